//! A snapshot of the whole data tree as bytes.
//!
//! The snapshot holds every node, ephemeral ones included with their owner, as ZooKeeper's does:
//! log txns after the snapshot may delete them. Sessions are not in it; a recovering coordinator
//! applies a `CloseSession` txn for each of [`DataTree::ephemeral_owners`] once the log is
//! replayed, so ephemeral nodes do not survive a restart.
//!
//! # Format (version 1, big-endian)
//! ```text
//! [u8; 4] magic "LBZS"
//! u8      format version (1)
//! i64     last zxid
//! u32     node count
//! node* (sorted by path, root first):
//!   path, data (u32 length + bytes)
//!   i64 czxid, i64 mzxid, i64 pzxid, i64 ctime_ms, i64 mtime_ms
//!   i32 version, i32 cversion
//!   kind (as in the txn format)
//! u32     CRC-32C of every byte before it
//! ```
//! `data_length`, `num_children` and the children sets are derived, not stored.

use std::collections::{BTreeSet, HashMap};

use super::codec::{Reader, Writer};
use super::error::CodecError;
use super::path;
use super::tree::{DataTree, Node};
use super::txn::{decode_kind, encode_kind, NodeKind};
use super::types::{Stat, Zxid};

/// The snapshot magic.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"LBZS";
/// The snapshot format version written by this build.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 1;
const CRC_BYTES: usize = 4;

/// Encodes the whole tree.
///
/// # Panics
/// If the tree has 4 G nodes or more, or a node holds 4 GiB or more.
pub fn encode_snapshot(tree: &DataTree) -> Vec<u8> {
    let mut nodes: Vec<(&String, &Node)> = tree.nodes().collect();
    nodes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    let mut writer = Writer::new(&mut out);
    SNAPSHOT_MAGIC.iter().for_each(|byte| writer.u8(*byte));
    writer.u8(SNAPSHOT_FORMAT_VERSION);
    writer.i64(tree.last_zxid().0);
    writer.u32(u32::try_from(nodes.len()).expect("4 G nodes"));
    for (node_path, node) in nodes {
        encode_node(node_path, node, &mut writer);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn encode_node(node_path: &str, node: &Node, writer: &mut Writer<'_>) {
    writer.bytes(node_path.as_bytes());
    writer.bytes(&node.data);
    let stat = &node.stat;
    for value in [
        stat.czxid.0,
        stat.mzxid.0,
        stat.pzxid.0,
        stat.ctime_ms,
        stat.mtime_ms,
    ] {
        writer.i64(value);
    }
    writer.i32(stat.version);
    writer.i32(stat.cversion);
    encode_kind(node.kind, writer);
}

/// Decodes a snapshot and checks it is a consistent tree.
///
/// # Errors
/// A [`CodecError`] for a bad checksum, magic or version, truncated or trailing bytes, invalid
/// paths, duplicate or orphan nodes, children of an ephemeral node, or a missing root.
pub fn decode_snapshot(input: &[u8]) -> Result<DataTree, CodecError> {
    let body = verify_crc(input)?;
    let mut reader = Reader::new(body);
    if reader.take(SNAPSHOT_MAGIC.len())? != SNAPSHOT_MAGIC {
        return Err(CodecError::BadMagic);
    }
    let version = reader.u8()?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion { version });
    }
    let last_zxid = Zxid(reader.i64()?);
    let count = reader.u32()?;
    let mut nodes = HashMap::new();
    for _ in 0..count {
        let (node_path, node) = decode_node(&mut reader)?;
        if nodes.insert(node_path.clone(), node).is_some() {
            return Err(inconsistent(&node_path, "duplicate node"));
        }
    }
    reader.finish()?;
    check_tree(&nodes)?;
    Ok(DataTree::from_parts(nodes, last_zxid))
}

fn verify_crc(input: &[u8]) -> Result<&[u8], CodecError> {
    let Some(body_len) = input.len().checked_sub(CRC_BYTES) else {
        return Err(CodecError::Truncated {
            position: 0,
            needed_bytes: CRC_BYTES,
            remaining_bytes: input.len(),
        });
    };
    let (body, crc) = input.split_at(body_len);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(CodecError::ChecksumMismatch { stored, computed });
    }
    Ok(body)
}

fn decode_node(reader: &mut Reader<'_>) -> Result<(String, Node), CodecError> {
    let node_path = reader.path()?;
    let data = reader.bytes()?.to_vec();
    let czxid = Zxid(reader.i64()?);
    let mzxid = Zxid(reader.i64()?);
    let pzxid = Zxid(reader.i64()?);
    let ctime_ms = reader.i64()?;
    let mtime_ms = reader.i64()?;
    let version = reader.i32()?;
    let cversion = reader.i32()?;
    let kind = decode_kind(reader)?;
    let stat = Stat {
        czxid,
        mzxid,
        pzxid,
        ctime_ms,
        mtime_ms,
        version,
        cversion,
        ephemeral_owner: kind.owner(),
        data_length: i32::try_from(data.len()).unwrap_or(i32::MAX),
        num_children: 0,
    };
    Ok((
        node_path,
        Node {
            data,
            stat,
            kind,
            children: BTreeSet::new(),
        },
    ))
}

fn check_tree(nodes: &HashMap<String, Node>) -> Result<(), CodecError> {
    match nodes.get(path::ROOT) {
        None => return Err(inconsistent(path::ROOT, "missing root")),
        Some(root) if root.kind != NodeKind::Persistent => {
            return Err(inconsistent(path::ROOT, "root is not persistent"));
        }
        Some(_) => {}
    }
    for node_path in nodes.keys().filter(|p| *p != path::ROOT) {
        match nodes.get(path::parent(node_path)) {
            None => return Err(inconsistent(node_path, "parent missing")),
            Some(parent) if matches!(parent.kind, NodeKind::Ephemeral(_)) => {
                return Err(inconsistent(node_path, "child of an ephemeral node"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn inconsistent(node_path: &str, reason: &'static str) -> CodecError {
    CodecError::Inconsistent {
        path: node_path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::txn::{Txn, TxnOp};
    use crate::coordinator::types::SessionId;
    use proptest::prelude::*;

    /// Builds a tree by applying creates, sets and deletes chosen by index, as a coordinator would
    /// after validation.
    fn tree_from(steps: &[(u8, u8, Vec<u8>)]) -> DataTree {
        let mut tree = DataTree::new();
        let mut zxid = 0;
        for (action, pick, data) in steps {
            let paths: Vec<String> = tree.nodes().map(|(p, _)| p.clone()).collect();
            let mut sorted = paths;
            sorted.sort();
            let target = &sorted[usize::from(*pick) % sorted.len()];
            let node = tree.get(target).expect("listed");
            let op = match action % 4 {
                0 if node.kind.owner() == SessionId::NONE => TxnOp::Create {
                    path: path::join(target, &format!("n{zxid}")),
                    data: data.clone(),
                    kind: [
                        NodeKind::Persistent,
                        NodeKind::Container,
                        NodeKind::Ephemeral(SessionId(3)),
                    ][usize::from(*pick) % 3],
                },
                1 => TxnOp::SetData {
                    path: target.clone(),
                    data: data.clone(),
                },
                2 if target != path::ROOT && node.children.is_empty() => TxnOp::Delete {
                    path: target.clone(),
                },
                3 => TxnOp::CloseSession {
                    session: SessionId(3),
                },
                _ => continue,
            };
            zxid += 1;
            tree.apply(&Txn {
                zxid: Zxid(zxid),
                time_ms: zxid * 10,
                ops: vec![op],
            });
        }
        tree
    }

    fn arb_steps() -> impl Strategy<Value = Vec<(u8, u8, Vec<u8>)>> {
        proptest::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..8),
            ),
            0..40,
        )
    }

    proptest! {
        #[test]
        fn snapshot_round_trips(steps in arb_steps()) {
            let tree = tree_from(&steps);
            let decoded = decode_snapshot(&encode_snapshot(&tree));
            prop_assert_eq!(decoded, Ok(tree));
        }

        #[test]
        fn any_flipped_byte_is_rejected(steps in arb_steps(), at in any::<prop::sample::Index>(), bit in 0..8u8) {
            let mut bytes = encode_snapshot(&tree_from(&steps));
            let index = at.index(bytes.len());
            bytes[index] ^= 1 << bit;
            prop_assert!(decode_snapshot(&bytes).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_snapshot(&bytes);
        }
    }

    fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        body
    }

    #[test]
    fn rejects_orphans_and_missing_root_even_with_a_good_crc() {
        let tree = tree_from(&[(0, 0, vec![1])]);
        let bytes = encode_snapshot(&tree);
        let body = &bytes[..bytes.len() - CRC_BYTES];
        // Drop the root: the node count says 2, so rewrite it to 1 and cut the root's record.
        let mut reader = Reader::new(body);
        reader.take(4 + 1 + 8 + 4).expect("header");
        let root_start = 4 + 1 + 8 + 4;
        let mut after_root = Reader::new(&body[root_start..]);
        let _ = decode_node(&mut after_root).expect("root");
        let root_len = body.len() - root_start - after_root.remaining();
        let mut without_root = body[..root_start].to_vec();
        without_root[13..17].copy_from_slice(&1u32.to_be_bytes());
        without_root.extend_from_slice(&body[root_start + root_len..]);
        assert_eq!(
            decode_snapshot(&with_crc(without_root)),
            Err(CodecError::Inconsistent {
                path: "/".into(),
                reason: "missing root"
            })
        );
    }

    #[test]
    fn rejects_short_input_and_bad_magic() {
        assert!(matches!(
            decode_snapshot(&[1, 2]),
            Err(CodecError::Truncated { .. })
        ));
        let mut bytes = encode_snapshot(&DataTree::new());
        bytes.truncate(bytes.len() - CRC_BYTES);
        bytes[0] = b'X';
        assert_eq!(decode_snapshot(&with_crc(bytes)), Err(CodecError::BadMagic));
    }
}
