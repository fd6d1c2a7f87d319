//! A logbus broker that Kafka's own clients use: `kcat`, kafka-python, confluent-kafka, the Java
//! client.
//!
//! ```text
//! cargo run --features kafka,zookeeper --example kafka_broker -- --listen 127.0.0.1:9092 --data DIR
//! cargo run --features kafka,zookeeper --example kafka_broker -- --listen 127.0.0.1:9093 --data DIR2 \
//!     --broker-id 2 --zookeeper 127.0.0.1:2181/logbus
//! ```
//!
//! Without `--zookeeper` the broker is alone, with its coordinator embedded. With it, brokers
//! sharing the ensemble (and chroot) form a cluster: controller election, partition leaders and
//! ISR live in ZooKeeper as Kafka's did, and followers replicate from leaders over Kafka's
//! protocol (`KafkaTransport`; see README's "Brokers on several machines").
//!
//! Options: `--advertised-host H` (the host clients are told; default the listen address),
//! `--partitions N` (Kafka's `num.partitions` for auto-created topics), `--replication-factor N`
//! (`default.replication.factor`), `--session-timeout-ms N`. Stops on SIGINT/SIGTERM or when stdin closes with `--stdin-stop`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use logbus::broker::{Broker, BrokerConfig};
use logbus::kafka::{KafkaServer, KafkaServerConfig, KafkaTransport, KafkaTransportConfig};
use logbus::replication::Endpoint;

struct Args {
    listen: String,
    data: PathBuf,
    broker_id: i32,
    zookeeper: Option<String>,
    advertised_host: Option<String>,
    partitions: u32,
    replication_factor: u16,
    session_timeout_ms: Option<u64>,
    stdin_stop: bool,
}

fn usage() -> String {
    "usage: kafka_broker --listen HOST:PORT --data DIR [--broker-id N] \
     [--zookeeper HOST:PORT[,HOST:PORT...][/chroot]] [--advertised-host HOST] [--partitions N] \
     [--replication-factor N] [--session-timeout-ms N] [--stdin-stop]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: String::new(),
        data: PathBuf::new(),
        broker_id: 0,
        zookeeper: None,
        advertised_host: None,
        partitions: 1,
        replication_factor: 1,
        session_timeout_ms: None,
        stdin_stop: false,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = || {
            words
                .next()
                .ok_or_else(|| format!("{word} needs a value\n{}", usage()))
        };
        match word.as_str() {
            "--listen" => args.listen = value()?,
            "--data" => args.data = PathBuf::from(value()?),
            "--broker-id" => {
                args.broker_id = value()?.parse().map_err(|e| format!("--broker-id: {e}"))?
            }
            "--zookeeper" => args.zookeeper = Some(value()?),
            "--advertised-host" => args.advertised_host = Some(value()?),
            "--partitions" => {
                args.partitions = value()?.parse().map_err(|e| format!("--partitions: {e}"))?
            }
            "--replication-factor" => {
                args.replication_factor = value()?
                    .parse()
                    .map_err(|e| format!("--replication-factor: {e}"))?;
            }
            "--session-timeout-ms" => {
                args.session_timeout_ms = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--session-timeout-ms: {e}"))?,
                );
            }
            "--stdin-stop" => args.stdin_stop = true,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if args.listen.is_empty() || args.data.as_os_str().is_empty() {
        return Err(usage());
    }
    Ok(args)
}

/// Log lines on stderr, for the server's reasons to close connections.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {}", record.level(), record.args());
        }
    }
    fn flush(&self) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let _ = log::set_logger(&StderrLogger).map(|()| log::set_max_level(log::LevelFilter::Info));
    // Bind first: the broker registers the address it serves on.
    let listener = TcpListener::bind(&args.listen)?;
    let bound = listener.local_addr()?;
    let host = args
        .advertised_host
        .clone()
        .unwrap_or_else(|| bound.ip().to_string());
    let mut config = BrokerConfig {
        broker_id: args.broker_id,
        advertised_listener: Some(Endpoint {
            host: host.clone(),
            port: bound.port(),
        }),
        ..BrokerConfig::default()
    };
    if let Some(timeout_ms) = args.session_timeout_ms {
        config.replication.session_timeout_ms = timeout_ms;
    }
    if let Some(connect) = &args.zookeeper {
        let coordinator = logbus::coordinator::ZooKeeperCoordinator::connect(
            logbus::coordinator::ZooKeeperConfig::new(connect.as_str()),
        )?;
        config.coordinator = Some(Arc::new(coordinator));
        // Peers are other processes: replicate to them over Kafka's protocol.
        config.transport = Some(KafkaTransport::new(KafkaTransportConfig::default()) as _);
    }
    let broker = Broker::open_with(&args.data, config)?;
    let server = KafkaServer::serve(
        broker.clone(),
        listener,
        KafkaServerConfig {
            advertised_host: Some(host),
            num_partitions: args.partitions,
            default_replication_factor: args.replication_factor,
            ..KafkaServerConfig::default()
        },
    )?;
    println!(
        "broker {} serving Kafka's protocol on {} (data {})",
        args.broker_id,
        server.local_addr(),
        args.data.display()
    );
    if args.stdin_stop {
        // Stops when stdin closes: a parent process that dies takes the broker with it.
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            sink.clear();
        }
    } else {
        loop {
            std::thread::park();
        }
    }
    server.shutdown();
    drop(broker);
    Ok(())
}
