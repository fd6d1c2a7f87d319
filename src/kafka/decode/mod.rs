//! Request frames: the header and the body of every API the server answers.
//!
//! A frame is what follows the 4-byte size prefix. Bodies are decoded into the `kafka-protocol`
//! crate's request types, so the handlers read the same structures a Kafka client encodes, but
//! by our own decoders: the crate's preallocate each array by the count read from the wire, so
//! a few hostile bytes could ask for gigabytes. Ours check every count and length against the
//! bytes left first (`reader`), and otherwise produce the values the crate's `decode` would,
//! field for field and version for version; a field a version lacks takes the value the
//! crate's decoder gives it, which is always the struct's `Default`.
//!
//! # Layout
//! - `reader`: Kafka's primitive types, read with bounds.
//! - `produce`: Produce, InitProducerId.
//! - `fetch`: Fetch, ListOffsets, OffsetForLeaderEpoch.
//! - `metadata`: Metadata, ApiVersions, CreateTopics, DeleteTopics.
//! - `group`: FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups,
//!   ListGroups.
//! - `offsets`: OffsetCommit, OffsetFetch.
//! - [`peer`]: logbus's private broker-to-broker APIs and tagged fields.
//! - [`response`]: the responses a broker reads from its peers (Fetch, OffsetForLeaderEpoch).

mod fetch;
mod group;
mod metadata;
mod offsets;
pub mod peer;
mod produce;
mod reader;
pub mod response;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    SyncGroupRequest,
};

use reader::{Encoding, Reader};

/// Why a frame does not decode. The connection that sent it is closed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame ends inside a field.
    #[error("frame truncated in {field}")]
    Truncated { field: &'static str },
    /// An API key this server does not answer.
    #[error("unsupported API key {api_key}")]
    UnknownApi { api_key: i16 },
    /// A version of a known API outside the range this server advertises.
    #[error("API key {api_key} version {version} is not supported")]
    UnsupportedVersion { api_key: i16, version: i16 },
    /// A field holds a value no valid request has (a negative length, bad UTF-8, an array
    /// longer than the bytes left).
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    /// Bytes left over after the body.
    #[error("{bytes} bytes after the end of the request body")]
    TrailingBytes { bytes: usize },
}

/// The request header (v0 to v2; the client id is absent only in v0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// One API this server answers, with the versions it advertises in ApiVersions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedApi {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

macro_rules! requests {
    ($($variant:ident($ty:ident) = $min:literal ..= $max:literal, flexible from $flexible:literal,
        $decode:path;)*) => {
        /// A decoded request body.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum KafkaRequest {
            $($variant($ty),)*
        }

        /// Every API the server answers, with its version range.
        pub const SUPPORTED_APIS: &[SupportedApi] = &[
            $(SupportedApi { key: ApiKey::$variant, min_version: $min, max_version: $max },)*
        ];

        /// The first flexible version of `key` (KIP-482: compact lengths, tagged fields).
        fn first_flexible_version(key: ApiKey) -> Option<i16> {
            match key {
                $(ApiKey::$variant => Some($flexible),)*
                _ => None,
            }
        }

        /// Decodes a body of a supported `key` at a supported `version`.
        fn decode_body(
            key: ApiKey,
            version: i16,
            reader: &mut Reader<'_>,
        ) -> Result<KafkaRequest, DecodeError> {
            match key {
                $(ApiKey::$variant => $decode(reader, version).map(KafkaRequest::$variant),)*
                _ => Err(DecodeError::UnknownApi { api_key: key as i16 }),
            }
        }
    };
}

// Each decoder follows the crate's generated `decode` for its message, keeping its version
// conditions even where they reach past the range served here, so that widening a range is a
// one-line change plus a look at the fields the crate's decoder adds.
requests! {
    Produce(ProduceRequest) = 3..=9, flexible from 9, produce::produce;
    Fetch(FetchRequest) = 4..=12, flexible from 12, fetch::fetch;
    ListOffsets(ListOffsetsRequest) = 1..=7, flexible from 6, fetch::list_offsets;
    Metadata(MetadataRequest) = 0..=12, flexible from 9, metadata::metadata;
    OffsetCommit(OffsetCommitRequest) = 2..=8, flexible from 8, offsets::offset_commit;
    OffsetFetch(OffsetFetchRequest) = 1..=7, flexible from 6, offsets::offset_fetch;
    FindCoordinator(FindCoordinatorRequest) = 0..=3, flexible from 3, group::find_coordinator;
    JoinGroup(JoinGroupRequest) = 0..=7, flexible from 6, group::join_group;
    Heartbeat(HeartbeatRequest) = 0..=4, flexible from 4, group::heartbeat;
    LeaveGroup(LeaveGroupRequest) = 0..=4, flexible from 4, group::leave_group;
    SyncGroup(SyncGroupRequest) = 0..=5, flexible from 4, group::sync_group;
    DescribeGroups(DescribeGroupsRequest) = 0..=5, flexible from 5, group::describe_groups;
    ListGroups(ListGroupsRequest) = 0..=4, flexible from 3, group::list_groups;
    ApiVersions(ApiVersionsRequest) = 0..=3, flexible from 3, metadata::api_versions;
    CreateTopics(CreateTopicsRequest) = 2..=7, flexible from 5, metadata::create_topics;
    DeleteTopics(DeleteTopicsRequest) = 1..=6, flexible from 4, metadata::delete_topics;
    InitProducerId(InitProducerIdRequest) = 0..=4, flexible from 2, produce::init_producer_id;
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest) = 2..=4, flexible from 4,
        fetch::offset_for_leader_epoch;
}

/// The range this server advertises for `api_key`, if it answers it.
pub fn supported(api_key: i16) -> Option<SupportedApi> {
    SUPPORTED_APIS
        .iter()
        .copied()
        .find(|api| api.key as i16 == api_key)
}

/// Reads the header at the front of `frame`, leaving the body.
///
/// Works for any API key and version: the first eight bytes (key, version, correlation id) are
/// common to every header version, so even a request this server cannot answer yields the
/// correlation id of its error response. For a key or version the server does not know, the
/// header is read as v1 (no tagged fields) unless the key is ApiVersions, whose newer versions
/// are flexible (v2 header).
///
/// # Errors
/// `Truncated` or `Invalid` for a header that does not parse.
pub fn decode_header(frame: &mut Bytes) -> Result<RequestHeader, DecodeError> {
    let mut reader = Reader::new(frame, Encoding::Classic);
    let api_key = reader.i16("api_key")?;
    let api_version = reader.i16("api_version")?;
    let correlation_id = reader.i32("correlation_id")?;
    let header_version = match ApiKey::try_from(api_key) {
        Ok(key)
            if key.valid_versions().min <= api_version
                && api_version <= key.valid_versions().max =>
        {
            key.request_header_version(api_version)
        }
        Ok(ApiKey::ApiVersions) if api_version > 0 => 2,
        _ => 1,
    };
    // The client id keeps its INT16 length even in the flexible (v2) header.
    let client_id = if header_version >= 1 {
        reader
            .nullable_string("client_id")?
            .map(|id| id.as_str().to_owned())
    } else {
        None
    };
    if header_version >= 2 {
        Reader::new(frame, Encoding::Flexible).tagged_fields("header tagged fields")?;
    }
    Ok(RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id,
    })
}

/// Decodes the body of a request whose header is `header`; the whole of `body` must be used.
///
/// # Errors
/// `UnknownApi` or `UnsupportedVersion` for a request outside [`SUPPORTED_APIS`]; `Truncated`,
/// `Invalid` or `TrailingBytes` for a body that does not match its schema.
pub fn decode_request(
    header: &RequestHeader,
    body: &mut Bytes,
) -> Result<KafkaRequest, DecodeError> {
    let api = supported(header.api_key).ok_or(DecodeError::UnknownApi {
        api_key: header.api_key,
    })?;
    if header.api_version < api.min_version || header.api_version > api.max_version {
        return Err(DecodeError::UnsupportedVersion {
            api_key: header.api_key,
            version: header.api_version,
        });
    }
    let encoding = match first_flexible_version(api.key) {
        Some(flexible) if header.api_version >= flexible => Encoding::Flexible,
        _ => Encoding::Classic,
    };
    let request = decode_body(
        api.key,
        header.api_version,
        &mut Reader::new(body, encoding),
    )?;
    if body.has_remaining() {
        return Err(DecodeError::TrailingBytes {
            bytes: body.remaining(),
        });
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flexible column of the table agrees with the crate's header versions: a version is
    /// flexible exactly when its request header is v2.
    #[test]
    fn flexible_versions_match_the_header_versions() {
        for api in SUPPORTED_APIS {
            let first = first_flexible_version(api.key).expect("every supported API has a row");
            for version in api.min_version..=api.max_version {
                assert_eq!(
                    version >= first,
                    api.key.request_header_version(version) >= 2,
                    "{:?} v{version}",
                    api.key
                );
            }
        }
    }
}
