//! Kafka's controller election on a real ZooKeeper, one broker per process.
//!
//! `cargo run --features zookeeper --example zk_controller -- CONNECT BROKER_ID DATA_DIR
//! [SESSION_TIMEOUT_MS]`
//!
//! Each process is a broker: it tries Kafka's election, one `multi` that creates the ephemeral
//! `/controller` and bumps `/controller_epoch` at the version it read. The winner prints
//! `broker N became controller (epoch E)`, records the epoch in `DATA_DIR/controller_epoch`, and
//! holds the role until its session ends. A loser watches `/controller` and tries again when it
//! goes: when the controller's process dies, ZooKeeper expires its session after the timeout,
//! deletes `/controller`, and another broker takes over. Run it twice with two data directories
//! and `kill -9` the controller to see it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use logbus::coordinator::{
    CoordError, Coordinator, CreateMode, Event, Op, SessionConfig, Version, Watch, ZooKeeperConfig,
    ZooKeeperCoordinator,
};

const CONTROLLER: &str = "/controller";
const CONTROLLER_EPOCH: &str = "/controller_epoch";

struct Args {
    connect: String,
    broker_id: i32,
    data_dir: PathBuf,
    session_timeout_ms: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.data_dir)?;
    let coordinator = ZooKeeperCoordinator::connect(ZooKeeperConfig::new(&args.connect))?;
    let session =
        coordinator.session(SessionConfig::default().with_timeout_ms(args.session_timeout_ms))?;
    println!(
        "broker {} joined with session {} (timeout {} ms)",
        args.broker_id,
        session.id(),
        session.timeout_ms()
    );
    match session.create(CONTROLLER_EPOCH, b"0", CreateMode::Persistent) {
        Ok(_) | Err(CoordError::NodeExists { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    let epoch = loop {
        if let Some(epoch) = try_elect(&session, args.broker_id)? {
            break epoch;
        }
        wait_for_vacancy(&session)?;
    };
    std::fs::write(args.data_dir.join("controller_epoch"), format!("{epoch}\n"))?;
    println!(
        "broker {} became controller (epoch {epoch})",
        args.broker_id
    );
    // Hold the role until the session ends (or the process is killed).
    loop {
        if let Event::Session(ended) = session.events().recv()? {
            println!("broker {} lost its session: {ended:?}", args.broker_id);
            return Ok(());
        }
    }
}

/// One round of Kafka's election: `Some(epoch)` if this broker won.
fn try_elect(
    session: &Arc<dyn logbus::coordinator::Session>,
    broker_id: i32,
) -> Result<Option<i32>, CoordError> {
    let (data, stat) = session.get_data(CONTROLLER_EPOCH, Watch::None)?;
    let epoch = std::str::from_utf8(&data)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .unwrap_or(0)
        .saturating_add(1);
    let controller = format!("{{\"version\":1,\"brokerid\":{broker_id}}}");
    let result = session.multi(&[
        Op::create(CONTROLLER, controller.into_bytes(), CreateMode::Ephemeral),
        Op::set_data(
            CONTROLLER_EPOCH,
            epoch.to_string().into_bytes(),
            Version::Exactly(stat.version),
        ),
    ]);
    match result {
        Ok(_) => Ok(Some(epoch)),
        Err(CoordError::MultiFailed { error, .. })
            if matches!(
                *error,
                CoordError::NodeExists { .. } | CoordError::BadVersion { .. }
            ) =>
        {
            Ok(None)
        }
        Err(CoordError::ConnectionLoss) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Waits until `/controller` is gone (returns at once if it already is).
fn wait_for_vacancy(session: &Arc<dyn logbus::coordinator::Session>) -> Result<(), CoordError> {
    println!("waiting: another broker is controller");
    loop {
        match session.exists(CONTROLLER, Watch::Set) {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
            Err(CoordError::ConnectionLoss) => continue,
            Err(error) => return Err(error),
        }
        loop {
            match session.events().recv_timeout(Duration::from_secs(60)) {
                Ok(Event::Watch(event)) if event.path == CONTROLLER => break,
                Ok(Event::Watch(_)) | Err(_) => {}
                Ok(Event::Session(ended)) => {
                    println!("session ended while waiting: {ended:?}");
                    return Err(CoordError::SessionExpired {
                        session: session.id(),
                    });
                }
            }
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: zk_controller CONNECT BROKER_ID DATA_DIR [SESSION_TIMEOUT_MS]";
    let mut args = std::env::args().skip(1);
    let connect = args.next().ok_or(usage)?;
    let broker_id = args.next().and_then(|id| id.parse().ok()).ok_or(usage)?;
    let data_dir = args.next().map(PathBuf::from).ok_or(usage)?;
    let session_timeout_ms = match args.next() {
        Some(ms) => ms.parse().map_err(|_| usage)?,
        None => 6_000,
    };
    Ok(Args {
        connect,
        broker_id,
        data_dir,
        session_timeout_ms,
    })
}
