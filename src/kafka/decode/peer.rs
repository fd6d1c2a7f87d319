//! What brokers say to each other beyond Kafka's client APIs: two logbus-private API keys,
//! and two tagged fields that ride on Kafka's own Fetch.
//!
//! Replica fetches and epoch queries are Kafka's Fetch (v12, `replica_id` = the follower's id)
//! and OffsetForLeaderEpoch (v4, `replica_id` = the follower's id). Kafka 4's schemas dropped
//! the ZooKeeper-era LeaderAndIsr (key 4) and ControlledShutdown (key 7), so the controller's
//! two messages travel under private keys numbered 10 000 + Kafka's old key, far outside the
//! range Kafka allocates from (below 100 today). The server never advertises them in
//! ApiVersions and answers them only to registered brokers.
//!
//! Both private APIs use version 0, request header v1 (client id, no tagged fields), response
//! header v0 (correlation id only), and the classic encoding (see `reader`):
//!
//! ```text
//! LogbusLeaderAndIsr (10004) v0          a wake-up: the receiver rereads these partitions'
//!   controller_id     INT32              state from the coordinator
//!   controller_epoch  INT32
//!   partitions        ARRAY of { topic STRING, partition INT32 }
//! response: error_code INT16             NONE, or NOT_CONTROLLER when controller_id is not
//!                                        a registered broker
//!
//! LogbusControlledShutdown (10007) v0    sent to the controller
//!   broker_id         INT32
//!   broker_epoch      INT64              the czxid of the sender's /brokers/ids/<id>
//! response: error_code INT16             NONE; NOT_CONTROLLER when the receiver is not the
//!           remaining  INT32               controller; STALE_BROKER_EPOCH when broker_epoch
//!                                          is not the broker's registration
//!                                        remaining: partitions it still leads (-1 on error)
//! ```
//!
//! Tagged fields added to Kafka's Fetch v12 (tag numbers far above Kafka's, which start at 0):
//!
//! ```text
//! FetchRequest   tag 10000  INT64  the follower's broker epoch (Fetch v15's ReplicaState
//!                                  carries it in Kafka; v12 has no field for it)
//! PartitionData  tag 10000  INT64  the leader's log end offset for the partition
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::reader::{Encoding, Reader};
use super::DecodeError;

/// LeaderAndIsr's old key plus 10 000.
pub const LEADER_AND_ISR_KEY: i16 = 10_004;
/// ControlledShutdown's old key plus 10 000.
pub const CONTROLLED_SHUTDOWN_KEY: i16 = 10_007;
/// The tag of the follower's broker epoch in a FetchRequest.
pub const REPLICA_BROKER_EPOCH_TAG: i32 = 10_000;
/// The tag of the leader's log end offset in a FetchResponse's PartitionData.
pub const LOG_END_OFFSET_TAG: i32 = 10_000;

/// A decoded private request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequest {
    LeaderAndIsr(LeaderAndIsr),
    ControlledShutdown(ControlledShutdown),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    pub controller_id: i32,
    pub controller_epoch: i32,
    pub partitions: Vec<(String, i32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlledShutdown {
    pub broker_id: i32,
    pub broker_epoch: i64,
}

/// Whether `api_key` is one of the private keys.
pub fn is_peer_api(api_key: i16) -> bool {
    api_key == LEADER_AND_ISR_KEY || api_key == CONTROLLED_SHUTDOWN_KEY
}

/// Decodes the body of a private request (the header was read by `decode_header`).
///
/// # Errors
/// `UnknownApi` or `UnsupportedVersion` outside the two keys at version 0; `Truncated`,
/// `Invalid` or `TrailingBytes` for a body that does not match.
pub fn decode_peer_request(
    api_key: i16,
    api_version: i16,
    body: &mut Bytes,
) -> Result<PeerRequest, DecodeError> {
    if !is_peer_api(api_key) {
        return Err(DecodeError::UnknownApi { api_key });
    }
    if api_version != 0 {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            version: api_version,
        });
    }
    let mut r = Reader::new(body, Encoding::Classic);
    let request = if api_key == LEADER_AND_ISR_KEY {
        let controller_id = r.i32("controller_id")?;
        let controller_epoch = r.i32("controller_epoch")?;
        let partitions = r.array("partitions", |r| {
            let topic = r.string("partitions.topic")?.to_string();
            Ok((topic, r.i32("partitions.partition")?))
        })?;
        PeerRequest::LeaderAndIsr(LeaderAndIsr {
            controller_id,
            controller_epoch,
            partitions,
        })
    } else {
        PeerRequest::ControlledShutdown(ControlledShutdown {
            broker_id: r.i32("broker_id")?,
            broker_epoch: r.i64("broker_epoch")?,
        })
    };
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            bytes: r.remaining(),
        });
    }
    Ok(request)
}

/// Encodes a private request body (the header is the caller's).
pub fn encode_peer_request(request: &PeerRequest) -> BytesMut {
    let mut body = BytesMut::new();
    match request {
        PeerRequest::LeaderAndIsr(notice) => {
            body.put_i32(notice.controller_id);
            body.put_i32(notice.controller_epoch);
            put_len(&mut body, notice.partitions.len());
            for (topic, partition) in &notice.partitions {
                let topic = &topic.as_bytes()[..topic.len().min(i16::MAX as usize)];
                body.put_i16(topic.len() as i16);
                body.put_slice(topic);
                body.put_i32(*partition);
            }
        }
        PeerRequest::ControlledShutdown(shutdown) => {
            body.put_i32(shutdown.broker_id);
            body.put_i64(shutdown.broker_epoch);
        }
    }
    body
}

fn put_len(body: &mut BytesMut, len: usize) {
    body.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

/// The answer to LogbusLeaderAndIsr.
pub fn encode_leader_and_isr_response(error_code: i16) -> BytesMut {
    let mut body = BytesMut::with_capacity(2);
    body.put_i16(error_code);
    body
}

/// The answer to LogbusControlledShutdown.
pub fn encode_controlled_shutdown_response(error_code: i16, remaining: i32) -> BytesMut {
    let mut body = BytesMut::with_capacity(6);
    body.put_i16(error_code);
    body.put_i32(remaining);
    body
}

/// Reads LogbusLeaderAndIsr's answer: its error code.
///
/// # Errors
/// `Truncated` or `TrailingBytes`.
pub fn decode_leader_and_isr_response(body: &mut Bytes) -> Result<i16, DecodeError> {
    let mut r = Reader::new(body, Encoding::Classic);
    let code = r.i16("error_code")?;
    finish(&r)?;
    Ok(code)
}

/// Reads LogbusControlledShutdown's answer: its error code and remaining partitions.
///
/// # Errors
/// `Truncated` or `TrailingBytes`.
pub fn decode_controlled_shutdown_response(body: &mut Bytes) -> Result<(i16, i32), DecodeError> {
    let mut r = Reader::new(body, Encoding::Classic);
    let code = r.i16("error_code")?;
    let remaining = r.i32("remaining")?;
    finish(&r)?;
    Ok((code, remaining))
}

fn finish(r: &Reader<'_>) -> Result<(), DecodeError> {
    match r.remaining() {
        0 => Ok(()),
        bytes => Err(DecodeError::TrailingBytes { bytes }),
    }
}

/// An INT64 tagged-field value.
pub fn i64_tag(value: i64) -> Bytes {
    Bytes::copy_from_slice(&value.to_be_bytes())
}

/// Reads an INT64 tagged-field value, which must fill its bytes exactly.
///
/// # Errors
/// `Truncated` or `Invalid` when the value is not eight bytes.
pub fn read_i64_tag(value: Bytes, field: &'static str) -> Result<i64, DecodeError> {
    super::reader::tagged_value(value, field, |r| r.i64(field))
}
