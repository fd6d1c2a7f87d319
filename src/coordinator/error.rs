//! Errors of the coordinator: one enum for operations, one for decoding txns and snapshots.

use super::types::SessionId;

/// A storage failure, shared by every operation that reports it. Two are equal when they are the
/// same failure.
#[derive(Debug, Clone)]
pub struct StorageError(pub std::sync::Arc<crate::log::LogError>);

impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StorageError {}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why an operation on a [`Session`](super::Session) failed.
///
/// The variants follow ZooKeeper's `KeeperException` codes where one exists, with fields instead
/// of strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoordError {
    /// Writing a txn to the coordinator's log failed. Nothing was applied, and the coordinator
    /// refuses every later operation with this error (as ZooKeeper stops a server whose log
    /// fails); reopening its directory recovers what was durable.
    #[error("coordinator storage failed: {0}")]
    StorageFailed(StorageError),
    /// The node does not exist (or, for `create`, its parent does not).
    #[error("no node at {path}")]
    NoNode {
        /// The missing path.
        path: String,
    },
    /// A node already exists at the path.
    #[error("node already exists at {path}")]
    NodeExists {
        /// The existing path.
        path: String,
    },
    /// The node's version differs from the expected one.
    #[error("bad version at {path}: expected {expected}, actual {actual}")]
    BadVersion {
        /// The node's path.
        path: String,
        /// The version the caller expected.
        expected: i32,
        /// The node's version.
        actual: i32,
    },
    /// The node still has children and cannot be deleted.
    #[error("node {path} has children")]
    NotEmpty {
        /// The node's path.
        path: String,
    },
    /// The parent is ephemeral; ephemeral nodes cannot have children.
    #[error("ephemeral node {parent} cannot have children")]
    NoChildrenForEphemerals {
        /// The ephemeral parent's path.
        parent: String,
    },
    /// The session has expired or was closed; every later operation fails the same way.
    #[error("session {session} expired")]
    SessionExpired {
        /// The session's id.
        session: SessionId,
    },
    /// The path is not a valid znode path.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: PathError,
    },
    /// The data is larger than the coordinator accepts (ZooKeeper's `jute.maxbuffer`).
    #[error("data of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    DataTooLarge {
        /// The data's size.
        size_bytes: usize,
        /// The largest accepted size.
        max_bytes: usize,
    },
    /// One operation of a `multi` failed; nothing of the `multi` was applied.
    #[error("multi failed at op {index}: {error}")]
    MultiFailed {
        /// Index of the first failing op in the request.
        index: usize,
        /// Why it failed.
        error: Box<CoordError>,
    },
    /// `remove_watches` found no watch of the requested kind on the path.
    #[error("no watcher of the requested kind on {path}")]
    NoWatcher {
        /// The path.
        path: String,
    },
    /// The connection to a remote ensemble was lost; the outcome of the operation is unknown.
    /// [`MemoryCoordinator`](super::MemoryCoordinator) never returns it.
    #[error("connection to the coordinator lost")]
    ConnectionLoss,
    /// A remote coordinator failed the request for a reason this API has no variant for
    /// (ZooKeeper's `NoAuth`, `QuotaExceeded`, `Throttled`, `Unimplemented`, or a reply the
    /// client could not decode). [`MemoryCoordinator`](super::MemoryCoordinator) never returns it.
    #[error("the coordinator refused the request: {reason}")]
    Refused {
        /// What the coordinator said, as the client names it.
        reason: &'static str,
    },
    /// The request is valid but not accepted by this coordinator (for example a session timeout
    /// of zero).
    #[error("bad arguments: {reason}")]
    BadArguments {
        /// What was wrong.
        reason: &'static str,
    },
}

/// What is wrong with a znode path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty.
    #[error("path is empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// The path ends with `/` and is not the root.
    #[error("path must not end with '/'")]
    TrailingSlash,
    /// The path has an empty component (`//`).
    #[error("path has an empty component")]
    EmptyComponent,
    /// The path has a `.` or `..` component.
    #[error("path has a relative component")]
    RelativeComponent,
    /// The path contains a NUL character.
    #[error("path contains NUL")]
    Nul,
    /// The root cannot be created or deleted.
    #[error("the root cannot be created or deleted")]
    Root,
}

/// Why bytes could not be decoded as a transaction or a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before a field.
    #[error(
        "truncated: needed {needed_bytes} bytes at position {position}, {remaining_bytes} remain"
    )]
    Truncated {
        /// Where the field starts.
        position: usize,
        /// How many bytes the field needs.
        needed_bytes: usize,
        /// How many bytes remain.
        remaining_bytes: usize,
    },
    /// The input has bytes after the last field.
    #[error("{extra_bytes} trailing bytes")]
    TrailingBytes {
        /// How many bytes follow the last field.
        extra_bytes: usize,
    },
    /// The format version is not one this build reads.
    #[error("unsupported format version {version}")]
    UnsupportedVersion {
        /// The version byte read.
        version: u8,
    },
    /// The magic bytes do not match.
    #[error("bad magic")]
    BadMagic,
    /// An enum tag has no meaning.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enum.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
    /// A string is not UTF-8.
    #[error("string at position {position} is not utf-8")]
    BadUtf8 {
        /// Where the string starts.
        position: usize,
    },
    /// A path read is not a valid znode path.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path read.
        path: String,
        /// What is wrong with it.
        reason: PathError,
    },
    /// The checksum does not match the content.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum stored in the input.
        stored: u32,
        /// The checksum of the content.
        computed: u32,
    },
    /// The decoded snapshot is not a consistent tree.
    #[error("inconsistent snapshot at {path}: {reason}")]
    Inconsistent {
        /// The offending node.
        path: String,
        /// What is inconsistent.
        reason: &'static str,
    },
}
