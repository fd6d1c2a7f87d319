//! Request frames: the header and the body of every API the server answers.
//!
//! A frame is what follows the 4-byte size prefix. The header is parsed here by hand (it is a few
//! fixed fields); bodies are decoded into the `kafka-protocol` crate's request types, so the
//! handlers read the same structures a Kafka client encodes.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::Decodable;

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
    ($($variant:ident($ty:ident) = $min:literal ..= $max:literal;)*) => {
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

        fn decode_body(key: ApiKey, version: i16, body: &mut Bytes) -> Result<KafkaRequest, DecodeError> {
            match key {
                $(ApiKey::$variant => <$ty as Decodable>::decode(body, version)
                    .map(KafkaRequest::$variant)
                    .map_err(|_| DecodeError::Invalid { field: stringify!($ty), reason: "does not decode" }),)*
                _ => Err(DecodeError::UnknownApi { api_key: key as i16 }),
            }
        }
    };
}

requests! {
    Produce(ProduceRequest) = 3..=9;
    Fetch(FetchRequest) = 4..=12;
    ListOffsets(ListOffsetsRequest) = 1..=7;
    Metadata(MetadataRequest) = 0..=12;
    OffsetCommit(OffsetCommitRequest) = 2..=8;
    OffsetFetch(OffsetFetchRequest) = 1..=7;
    FindCoordinator(FindCoordinatorRequest) = 0..=3;
    JoinGroup(JoinGroupRequest) = 0..=7;
    Heartbeat(HeartbeatRequest) = 0..=4;
    LeaveGroup(LeaveGroupRequest) = 0..=4;
    SyncGroup(SyncGroupRequest) = 0..=5;
    DescribeGroups(DescribeGroupsRequest) = 0..=5;
    ListGroups(ListGroupsRequest) = 0..=4;
    ApiVersions(ApiVersionsRequest) = 0..=3;
    CreateTopics(CreateTopicsRequest) = 2..=7;
    DeleteTopics(DeleteTopicsRequest) = 1..=6;
    InitProducerId(InitProducerIdRequest) = 0..=4;
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest) = 2..=4;
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
    let api_key = get_i16(frame, "api_key")?;
    let api_version = get_i16(frame, "api_version")?;
    let correlation_id = get_i32(frame, "correlation_id")?;
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
    let client_id = if header_version >= 1 {
        get_nullable_string(frame, "client_id")?
    } else {
        None
    };
    if header_version >= 2 {
        skip_tagged_fields(frame)?;
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
    let request = decode_body(api.key, header.api_version, body)?;
    if body.has_remaining() {
        return Err(DecodeError::TrailingBytes {
            bytes: body.remaining(),
        });
    }
    Ok(request)
}

fn get_i16(buf: &mut Bytes, field: &'static str) -> Result<i16, DecodeError> {
    buf.try_get_i16()
        .map_err(|_| DecodeError::Truncated { field })
}

fn get_i32(buf: &mut Bytes, field: &'static str) -> Result<i32, DecodeError> {
    buf.try_get_i32()
        .map_err(|_| DecodeError::Truncated { field })
}

fn get_nullable_string(
    buf: &mut Bytes,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    let len = get_i16(buf, field)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| DecodeError::Invalid {
        field,
        reason: "negative length",
    })?;
    if buf.remaining() < len {
        return Err(DecodeError::Truncated { field });
    }
    let bytes = buf.split_to(len);
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| DecodeError::Invalid {
            field,
            reason: "not UTF-8",
        })
}

/// An unsigned varint of at most 32 bits.
fn get_unsigned_varint(buf: &mut Bytes, field: &'static str) -> Result<u32, DecodeError> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = buf
            .try_get_u8()
            .map_err(|_| DecodeError::Truncated { field })?;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            if shift == 28 && byte > 0x0f {
                break;
            }
            return Ok(value);
        }
    }
    Err(DecodeError::Invalid {
        field,
        reason: "varint longer than 32 bits",
    })
}

fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), DecodeError> {
    let count = get_unsigned_varint(buf, "tagged fields")?;
    for _ in 0..count {
        let _tag = get_unsigned_varint(buf, "tagged field tag")?;
        let size = get_unsigned_varint(buf, "tagged field size")? as usize;
        if buf.remaining() < size {
            return Err(DecodeError::Truncated {
                field: "tagged field",
            });
        }
        buf.advance(size);
    }
    Ok(())
}
