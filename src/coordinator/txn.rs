//! Committed transactions as plain values, and their byte encoding.
//!
//! Every change to the tree is a [`Txn`] applied by [`DataTree::apply`](super::tree::DataTree):
//! durability appends `encode_txn` bytes to a log and replays them with `decode_txn`.
//!
//! # Format (version 1, big-endian)
//! ```text
//! u8  format version (1)
//! i64 zxid
//! i64 time_ms
//! u32 op count
//! op*:
//!   u8 tag
//!   1 Create:       path, data, kind
//!   2 Delete:       path
//!   3 SetData:      path, data
//!   4 CloseSession: i64 session id
//! path, data = u32 length + bytes (a path is UTF-8 and valid)
//! kind = u8: 0 persistent, 1 container, 2 ephemeral followed by i64 owner session id
//! ```

use super::codec::{Reader, Writer};
use super::error::CodecError;
use super::types::{SessionId, Zxid};

/// The txn format version written by this build.
pub const TXN_FORMAT_VERSION: u8 = 1;

const TAG_CREATE: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_SET_DATA: u8 = 3;
const TAG_CLOSE_SESSION: u8 = 4;

const KIND_PERSISTENT: u8 = 0;
const KIND_CONTAINER: u8 = 1;
const KIND_EPHEMERAL: u8 = 2;

/// How a node lives: the part of [`CreateMode`](super::CreateMode) that outlasts creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// Lives until deleted.
    Persistent,
    /// Deleted with its last child.
    Container,
    /// Deleted when the owning session ends.
    Ephemeral(SessionId),
}

impl NodeKind {
    /// The owning session, or [`SessionId::NONE`].
    pub fn owner(self) -> SessionId {
        match self {
            NodeKind::Ephemeral(owner) => owner,
            NodeKind::Persistent | NodeKind::Container => SessionId::NONE,
        }
    }
}

/// One change within a txn.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxnOp {
    /// Create a node at this exact path (sequential names already resolved).
    Create {
        /// The path.
        path: String,
        /// The data.
        data: Vec<u8>,
        /// How it lives.
        kind: NodeKind,
    },
    /// Delete a node (its version was checked when the txn was prepared).
    Delete {
        /// The path.
        path: String,
    },
    /// Set a node's data and bump its version.
    SetData {
        /// The path.
        path: String,
        /// The data.
        data: Vec<u8>,
    },
    /// End a session: delete its ephemeral nodes.
    CloseSession {
        /// The session.
        session: SessionId,
    },
}

/// A committed transaction: all of its ops apply at one zxid, or none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Txn {
    /// Its position in the global order.
    pub zxid: Zxid,
    /// When it was committed (becomes `ctime`/`mtime`).
    pub time_ms: i64,
    /// Its changes, in order.
    pub ops: Vec<TxnOp>,
}

/// Appends the encoding of `txn` to `out`.
///
/// # Panics
/// If a path or data is 4 GiB or more (the coordinator bounds data far below that).
pub fn encode_txn(txn: &Txn, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.u8(TXN_FORMAT_VERSION);
    writer.i64(txn.zxid.0);
    writer.i64(txn.time_ms);
    let count = u32::try_from(txn.ops.len()).expect("txn of 4 G ops");
    writer.u32(count);
    for op in &txn.ops {
        encode_op(op, &mut writer);
    }
}

fn encode_op(op: &TxnOp, writer: &mut Writer<'_>) {
    match op {
        TxnOp::Create { path, data, kind } => {
            writer.u8(TAG_CREATE);
            writer.bytes(path.as_bytes());
            writer.bytes(data);
            encode_kind(*kind, writer);
        }
        TxnOp::Delete { path } => {
            writer.u8(TAG_DELETE);
            writer.bytes(path.as_bytes());
        }
        TxnOp::SetData { path, data } => {
            writer.u8(TAG_SET_DATA);
            writer.bytes(path.as_bytes());
            writer.bytes(data);
        }
        TxnOp::CloseSession { session } => {
            writer.u8(TAG_CLOSE_SESSION);
            writer.i64(session.0);
        }
    }
}

/// Writes a node kind (shared with the snapshot format).
pub(crate) fn encode_kind(kind: NodeKind, writer: &mut Writer<'_>) {
    match kind {
        NodeKind::Persistent => writer.u8(KIND_PERSISTENT),
        NodeKind::Container => writer.u8(KIND_CONTAINER),
        NodeKind::Ephemeral(owner) => {
            writer.u8(KIND_EPHEMERAL);
            writer.i64(owner.0);
        }
    }
}

/// Reads a node kind (shared with the snapshot format).
///
/// # Errors
/// `Truncated` or `UnknownTag` (an ephemeral owned by session 0 is unknown too).
pub(crate) fn decode_kind(reader: &mut Reader<'_>) -> Result<NodeKind, CodecError> {
    match reader.u8()? {
        KIND_PERSISTENT => Ok(NodeKind::Persistent),
        KIND_CONTAINER => Ok(NodeKind::Container),
        KIND_EPHEMERAL => match reader.i64()? {
            0 => Err(CodecError::UnknownTag {
                what: "ephemeral owner",
                tag: 0,
            }),
            owner => Ok(NodeKind::Ephemeral(SessionId(owner))),
        },
        tag => Err(CodecError::UnknownTag {
            what: "node kind",
            tag,
        }),
    }
}

/// Decodes one txn that fills `input` exactly.
///
/// # Errors
/// A [`CodecError`] for truncated, trailing, unknown or invalid content; never panics.
pub fn decode_txn(input: &[u8]) -> Result<Txn, CodecError> {
    let mut reader = Reader::new(input);
    let version = reader.u8()?;
    if version != TXN_FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion { version });
    }
    let zxid = Zxid(reader.i64()?);
    let time_ms = reader.i64()?;
    let count = reader.u32()?;
    // No allocation sized by the count: the ops are pushed as they decode.
    let mut ops = Vec::new();
    for _ in 0..count {
        ops.push(decode_op(&mut reader)?);
    }
    reader.finish()?;
    Ok(Txn { zxid, time_ms, ops })
}

fn decode_op(reader: &mut Reader<'_>) -> Result<TxnOp, CodecError> {
    match reader.u8()? {
        TAG_CREATE => {
            let path = reader.non_root_path()?;
            let data = reader.bytes()?.to_vec();
            let kind = decode_kind(reader)?;
            Ok(TxnOp::Create { path, data, kind })
        }
        TAG_DELETE => Ok(TxnOp::Delete {
            path: reader.non_root_path()?,
        }),
        TAG_SET_DATA => {
            let path = reader.path()?;
            let data = reader.bytes()?.to_vec();
            Ok(TxnOp::SetData { path, data })
        }
        TAG_CLOSE_SESSION => Ok(TxnOp::CloseSession {
            session: SessionId(reader.i64()?),
        }),
        tag => Err(CodecError::UnknownTag {
            what: "txn op",
            tag,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_path() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-z0-9_]{1,6}", 1..4)
            .prop_map(|parts| format!("/{}", parts.join("/")))
    }

    fn arb_kind() -> impl Strategy<Value = NodeKind> {
        prop_oneof![
            Just(NodeKind::Persistent),
            Just(NodeKind::Container),
            (1..i64::MAX).prop_map(|owner| NodeKind::Ephemeral(SessionId(owner))),
        ]
    }

    fn arb_op() -> impl Strategy<Value = TxnOp> {
        let data = || proptest::collection::vec(any::<u8>(), 0..32);
        prop_oneof![
            (arb_path(), data(), arb_kind()).prop_map(|(path, data, kind)| TxnOp::Create {
                path,
                data,
                kind
            }),
            arb_path().prop_map(|path| TxnOp::Delete { path }),
            (arb_path(), data()).prop_map(|(path, data)| TxnOp::SetData { path, data }),
            any::<i64>().prop_map(|id| TxnOp::CloseSession {
                session: SessionId(id)
            }),
        ]
    }

    fn arb_txn() -> impl Strategy<Value = Txn> {
        (
            any::<i64>(),
            any::<i64>(),
            proptest::collection::vec(arb_op(), 0..6),
        )
            .prop_map(|(zxid, time_ms, ops)| Txn {
                zxid: Zxid(zxid),
                time_ms,
                ops,
            })
    }

    proptest! {
        #[test]
        fn txn_round_trips(txn in arb_txn()) {
            let mut bytes = Vec::new();
            encode_txn(&txn, &mut bytes);
            prop_assert_eq!(decode_txn(&bytes), Ok(txn));
        }

        #[test]
        fn every_strict_prefix_is_rejected(txn in arb_txn(), cut in any::<prop::sample::Index>()) {
            let mut bytes = Vec::new();
            encode_txn(&txn, &mut bytes);
            let len = cut.index(bytes.len());
            prop_assert!(decode_txn(&bytes[..len]).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_txn(&bytes);
        }
    }

    fn sample() -> Vec<u8> {
        let txn = Txn {
            zxid: Zxid(7),
            time_ms: 1,
            ops: vec![TxnOp::Create {
                path: "/a".into(),
                data: vec![1],
                kind: NodeKind::Persistent,
            }],
        };
        let mut bytes = Vec::new();
        encode_txn(&txn, &mut bytes);
        bytes
    }

    #[test]
    fn rejects_bad_version_tag_path_and_trailing_bytes() {
        let mut bytes = sample();
        bytes[0] = 9;
        assert_eq!(
            decode_txn(&bytes),
            Err(CodecError::UnsupportedVersion { version: 9 })
        );
        let mut bytes = sample();
        bytes[21] = 99;
        assert_eq!(
            decode_txn(&bytes),
            Err(CodecError::UnknownTag {
                what: "txn op",
                tag: 99
            })
        );
        let mut bytes = sample();
        bytes[27] = b'/';
        assert!(matches!(
            decode_txn(&bytes),
            Err(CodecError::InvalidPath { .. })
        ));
        let mut bytes = sample();
        bytes.push(0);
        assert_eq!(
            decode_txn(&bytes),
            Err(CodecError::TrailingBytes { extra_bytes: 1 })
        );
    }

    #[test]
    fn huge_length_is_truncated_not_allocated() {
        let mut bytes = sample();
        bytes[22..26].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_txn(&bytes),
            Err(CodecError::Truncated { .. })
        ));
    }
}
