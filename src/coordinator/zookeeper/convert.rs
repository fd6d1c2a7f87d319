//! Translation between the client crate's types and the coordinator's: errors, stats, modes.

use std::time::Duration;

use zookeeper_client as zk;

use super::super::path;
use super::super::{CoordError, CreateMode, EventType, SessionId, Stat, Version, Zxid};

/// Connects with `connector`, giving up after `timeout`.
///
/// # Errors
/// `ConnectionLoss` if no server serves in time; `SessionExpired` (with `SessionId::NONE`, for
/// the caller to fill in) if the connector resumes a session that has ended.
pub(crate) async fn connect(
    connector: zk::Connector,
    hosts: &str,
    timeout: Duration,
) -> Result<zk::Client, CoordError> {
    match tokio::time::timeout(timeout, connector.connect(hosts)).await {
        Err(_elapsed) => Err(CoordError::ConnectionLoss),
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(self::error(error, hosts, SessionId::NONE)),
    }
}

/// Translates a failed request on `path` of `session`. `BadVersion` comes back with unknown
/// versions (-1): the caller knows the expected one and reads the actual one.
pub(crate) fn error(error: zk::Error, path: &str, session: SessionId) -> CoordError {
    let path_owned = || path.to_owned();
    match error {
        zk::Error::NoNode => CoordError::NoNode { path: path_owned() },
        zk::Error::NodeExists => CoordError::NodeExists { path: path_owned() },
        zk::Error::BadVersion => CoordError::BadVersion {
            path: path_owned(),
            expected: -1,
            actual: -1,
        },
        zk::Error::NotEmpty => CoordError::NotEmpty { path: path_owned() },
        zk::Error::NoChildrenForEphemerals => CoordError::NoChildrenForEphemerals {
            parent: parent_of(path).to_owned(),
        },
        zk::Error::NoWatcher => CoordError::NoWatcher { path: path_owned() },
        zk::Error::SessionExpired | zk::Error::ClientClosed => {
            CoordError::SessionExpired { session }
        }
        zk::Error::ConnectionLoss
        | zk::Error::Timeout
        | zk::Error::NoHosts
        | zk::Error::SessionMoved => CoordError::ConnectionLoss,
        zk::Error::BadArguments(reason) => CoordError::BadArguments { reason },
        other => CoordError::Refused {
            reason: refusal(&other),
        },
    }
}

fn refusal(error: &zk::Error) -> &'static str {
    match error {
        zk::Error::NoAuth => "no auth",
        zk::Error::AuthFailed => "auth failed",
        zk::Error::InvalidAcl => "invalid acl",
        zk::Error::QuotaExceeded => "quota exceeded",
        zk::Error::Throttled => "throttled",
        zk::Error::Unimplemented => "unimplemented",
        zk::Error::NotReadOnly => "not read-only",
        zk::Error::ReconfigDisabled => "reconfig disabled",
        zk::Error::MarshallingError | zk::Error::UnmarshalError { .. } => "malformed message",
        _ => "unexpected error",
    }
}

/// The parent of `path`, or the root for a path without one.
pub(crate) fn parent_of(path: &str) -> &str {
    if path.len() > 1 && path.starts_with('/') {
        path::parent(path)
    } else {
        "/"
    }
}

pub(crate) fn stat(stat: &zk::Stat) -> Stat {
    Stat {
        czxid: Zxid(stat.czxid),
        mzxid: Zxid(stat.mzxid),
        pzxid: Zxid(stat.pzxid),
        ctime_ms: stat.ctime,
        mtime_ms: stat.mtime,
        version: stat.version,
        cversion: stat.cversion,
        ephemeral_owner: SessionId(stat.ephemeral_owner),
        data_length: stat.data_length,
        num_children: stat.num_children,
    }
}

pub(crate) fn create_mode(mode: CreateMode) -> zk::CreateMode {
    match mode {
        CreateMode::Persistent => zk::CreateMode::Persistent,
        CreateMode::Ephemeral => zk::CreateMode::Ephemeral,
        CreateMode::PersistentSequential => zk::CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential => zk::CreateMode::EphemeralSequential,
        CreateMode::Container => zk::CreateMode::Container,
    }
}

/// ZooKeeper's expected version: `None` is -1, any version.
pub(crate) fn version(version: Version) -> Option<i32> {
    match version {
        Version::Any => None,
        Version::Exactly(version) => Some(version),
    }
}

pub(crate) fn event_type(kind: zk::EventType) -> Option<EventType> {
    match kind {
        zk::EventType::NodeCreated => Some(EventType::NodeCreated),
        zk::EventType::NodeDeleted => Some(EventType::NodeDeleted),
        zk::EventType::NodeDataChanged => Some(EventType::NodeDataChanged),
        zk::EventType::NodeChildrenChanged => Some(EventType::NodeChildrenChanged),
        zk::EventType::Session => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_path_and_kind() {
        let session = SessionId(7);
        assert_eq!(
            error(zk::Error::NoChildrenForEphemerals, "/e/c", session),
            CoordError::NoChildrenForEphemerals {
                parent: "/e".into()
            }
        );
        assert_eq!(
            error(zk::Error::ClientClosed, "/", session),
            CoordError::SessionExpired { session }
        );
        assert_eq!(
            error(zk::Error::Throttled, "/", session),
            CoordError::Refused {
                reason: "throttled"
            }
        );
        assert_eq!(
            error(zk::Error::SessionMoved, "/", session),
            CoordError::ConnectionLoss
        );
    }
}
