//! Throw-away ZooKeeper servers for tests: Debian's `zookeeper` package run by hand, on
//! 127.0.0.1, with a temporary data directory and free ports.
//!
//! [`available`] decides whether a test can run: without the package, a test outside CI says so
//! loudly and skips; in CI (`CI=true`) it fails.

#![allow(
    dead_code,
    reason = "each test binary uses a part of the support module"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server jar from Debian's `zookeeper` package.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// A logging backend, so the server's log lands in a file.
pub const SLF4J_JAR: &str = "/usr/share/java/slf4j-simple.jar";
/// The tick: sessions negotiate 2 to 20 ticks, so expiry takes a second or so.
pub const TICK_MS: u64 = 250;
/// How long a server may take to serve.
pub const READY_WAIT: Duration = Duration::from_secs(30);

/// Whether a server can be started here. Outside CI, prints why not and returns `false`; in CI
/// (`CI=true`), panics instead.
pub fn available(test: &str) -> bool {
    let missing = if !Path::new(ZOOKEEPER_JAR).exists() {
        Some(format!(
            "{ZOOKEEPER_JAR} is missing (apt-get install zookeeper)"
        ))
    } else if Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |status| !status.success())
    {
        Some("no `java` on PATH".to_owned())
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: ZooKeeper is required in CI, but {why}")
        }
        Some(why) => {
            // Straight to the file descriptor: the test harness captures `eprintln!` of passing
            // tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!! SKIPPED {test}: no ZooKeeper server can be started: {why} !!!!\n"
            );
            false
        }
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// One server of a standalone setup or an ensemble.
pub struct Node {
    pub id: u32,
    pub client_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// `host:port` of its client port.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Starts the server process (again, after [`Node::stop`]).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already runs", self.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let mut command = Command::new("java");
        command
            .args([
                "-Xms16m",
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                // The container reaper runs every minute by default; the suite waits for it.
                "-Dznode.container.checkIntervalMs=100",
                "-Dzookeeper.jmx.log4j.disable=true",
                "-cp",
                &format!("{ZOOKEEPER_JAR}:{SLF4J_JAR}"),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        // SAFETY: the closure only calls `prctl`, which is async-signal-safe, between fork and
        // exec. It makes the kernel kill the server when the thread that started it ends, so
        // no server outlives a test process that dies or exits without dropping it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("spawn java"));
    }

    /// Kills the server process (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's answer to `srvr`, if it answers.
    pub fn srvr(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.client_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"srvr").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    }

    /// `standalone`, `leader` or `follower`, once the server serves.
    pub fn mode(&self) -> Option<String> {
        let answer = self.srvr()?;
        let line = answer.lines().find(|line| line.starts_with("Mode:"))?;
        Some(line.trim_start_matches("Mode:").trim().to_owned())
    }

    /// Waits (bounded) until the server serves.
    ///
    /// # Panics
    /// If it does not within [`READY_WAIT`], with the end of its log.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_WAIT;
        while Instant::now() < deadline {
            if self.mode().is_some() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("server {} exited ({status}):\n{}", self.id, self.log_tail());
                }
            }
            // Polling an external process's readiness; bounded by the deadline.
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "server {} not serving after {READY_WAIT:?}:\n{}",
            self.id,
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log.get(start..).unwrap_or_default().to_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A standalone server or an ensemble, with its directory.
pub struct ZooKeeper {
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl ZooKeeper {
    /// Starts a standalone server and waits until it serves.
    pub fn standalone() -> ZooKeeper {
        ZooKeeper::start(1)
    }

    /// Starts `size` servers (an ensemble if more than one) and waits until all serve.
    pub fn start(size: u32) -> ZooKeeper {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16, u16)> = (0..size)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let servers: String = if size > 1 {
            ports
                .iter()
                .zip(1..)
                .map(|((_, peer, election), id)| {
                    format!("server.{id}=127.0.0.1:{peer}:{election}\n")
                })
                .collect()
        } else {
            String::new()
        };
        let mut nodes: Vec<Node> = ports
            .iter()
            .zip(1..)
            .map(|(&(client_port, _, _), id)| {
                let data = dir.path().join(format!("node{id}"));
                std::fs::create_dir_all(&data).expect("data dir");
                std::fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
                let config = dir.path().join(format!("node{id}.cfg"));
                std::fs::write(&config, config_text(&data, client_port, &servers)).expect("config");
                Node {
                    id,
                    client_port,
                    config,
                    log: dir.path().join(format!("node{id}.log")),
                    child: None,
                }
            })
            .collect();
        nodes.iter_mut().for_each(Node::start);
        nodes.iter_mut().for_each(Node::wait_ready);
        ZooKeeper { nodes, dir }
    }

    /// The connect string of every node, with `chroot` (empty for none) appended.
    pub fn connect_string(&self, chroot: &str) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(Node::address).collect();
        format!("{}{chroot}", hosts.join(","))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn config_text(data: &Path, client_port: u16, servers: &str) -> String {
    format!(
        "tickTime={TICK_MS}\n\
         initLimit=20\n\
         syncLimit=10\n\
         dataDir={}\n\
         clientPort={client_port}\n\
         clientPortAddress=127.0.0.1\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=*\n\
         minSessionTimeout={}\n\
         {servers}",
        data.display(),
        TICK_MS * 2,
    )
}
