//! Fetch, ListOffsets and OffsetForLeaderEpoch from clients (a follower's are answered by
//! `replica`), each against a partition this broker leads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use super::{partition_index, Handler};
use crate::kafka::errors;
use crate::partition::{Notifier, Replica};
use crate::replication::ReplicatedPartition;

/// The longest a Fetch may wait, whatever it asks (a bound on a connection thread's sleep).
const MAX_FETCH_WAIT_MS: i32 = 30_000;

impl Handler {
    /// The local replica of a partition this broker leads, checked against the epoch the
    /// client believes in (`-1`: no check).
    fn leading(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<(Arc<ReplicatedPartition>, Arc<Replica>), i16> {
        let index = partition_index(partition).ok_or(errors::UNKNOWN_TOPIC_OR_PARTITION)?;
        let local = match self.broker.replicated_partition(topic, index) {
            Ok(local) => local,
            Err(_) => {
                return Err(match self.broker.topic(topic) {
                    Ok(found) if index < found.partition_count() => errors::NOT_LEADER_OR_FOLLOWER,
                    _ => errors::UNKNOWN_TOPIC_OR_PARTITION,
                })
            }
        };
        if !local.is_leader() {
            return Err(errors::NOT_LEADER_OR_FOLLOWER);
        }
        let (_, epoch) = local.leader();
        if current_leader_epoch >= 0 && current_leader_epoch < epoch {
            return Err(errors::FENCED_LEADER_EPOCH);
        }
        if current_leader_epoch > epoch {
            return Err(errors::UNKNOWN_LEADER_EPOCH);
        }
        let replica = Arc::clone(local.replica());
        Ok((local, replica))
    }

    pub(super) fn fetch(&self, request: &FetchRequest) -> FetchResponse {
        let wait_ms = request.max_wait_ms.clamp(0, MAX_FETCH_WAIT_MS);
        let deadline = Instant::now() + Duration::from_millis(wait_ms as u64);
        let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
        let notifier = Notifier::new();
        let mut watched: Vec<Arc<Replica>> = Vec::new();
        let response = loop {
            notifier.reset();
            let (response, bytes, failed) = self.fetch_once(request, &mut watched, &notifier);
            if bytes >= min_bytes.max(1) || failed || Instant::now() >= deadline {
                break response;
            }
            notifier.wait_until(deadline);
        };
        for replica in &watched {
            replica.unregister_waiter(&notifier);
        }
        response
    }

    /// One pass over the requested partitions: the response, its record bytes, and whether a
    /// partition answered an error (which ends the long poll, as in Kafka).
    fn fetch_once(
        &self,
        request: &FetchRequest,
        watched: &mut Vec<Arc<Replica>>,
        notifier: &Arc<Notifier>,
    ) -> (FetchResponse, usize, bool) {
        let mut response = FetchResponse::default();
        let mut budget = usize::try_from(request.max_bytes).unwrap_or(0);
        let mut total = 0usize;
        let mut failed = false;
        for topic in &request.topics {
            let mut answer = FetchableTopicResponse::default();
            answer.topic = topic.topic.clone();
            answer.topic_id = topic.topic_id;
            let name = topic.topic.0.as_str();
            for wanted in &topic.partitions {
                let mut partition = PartitionData::default();
                partition.partition_index = wanted.partition;
                partition.high_watermark = -1;
                partition.last_stable_offset = -1;
                partition.log_start_offset = -1;
                partition.preferred_read_replica = BrokerId(-1);
                partition.aborted_transactions = if request.isolation_level == 1 {
                    Some(Vec::new())
                } else {
                    None
                };
                match self.leading(name, wanted.partition, wanted.current_leader_epoch) {
                    Err(code) => {
                        partition.error_code = code;
                        failed = true;
                    }
                    Ok((_, replica)) => {
                        if !watched.iter().any(|known| Arc::ptr_eq(known, &replica)) {
                            replica.register_waiter(notifier);
                            watched.push(Arc::clone(&replica));
                        }
                        let high_watermark = replica.high_watermark();
                        partition.high_watermark = high_watermark as i64;
                        partition.last_stable_offset = high_watermark as i64;
                        partition.log_start_offset = replica.log().log_start_offset() as i64;
                        let max_bytes = usize::try_from(wanted.partition_max_bytes)
                            .unwrap_or(0)
                            .min(budget);
                        // KIP-74: the first partition with data answers at least one batch,
                        // whatever the limits, so a large batch cannot stall the consumer.
                        let max_bytes = if total == 0 {
                            max_bytes.max(1)
                        } else {
                            max_bytes
                        };
                        match u64::try_from(wanted.fetch_offset) {
                            Ok(offset) if max_bytes > 0 => {
                                match replica.read_committed(offset, max_bytes) {
                                    Ok(read) => {
                                        total += read.bytes.len();
                                        budget = budget.saturating_sub(read.bytes.len());
                                        partition.records = Some(read.bytes);
                                    }
                                    Err(error) => {
                                        partition.error_code = errors::code_of_partition(&error);
                                        failed = true;
                                    }
                                }
                            }
                            Ok(_) => partition.records = Some(Bytes::new()),
                            Err(_) => {
                                partition.error_code = errors::OFFSET_OUT_OF_RANGE;
                                failed = true;
                            }
                        }
                    }
                }
                answer.partitions.push(partition);
            }
            response.responses.push(answer);
        }
        (response, total, failed)
    }

    pub(super) fn list_offsets(
        &self,
        version: i16,
        request: &ListOffsetsRequest,
    ) -> ListOffsetsResponse {
        let mut response = ListOffsetsResponse::default();
        for topic in &request.topics {
            let mut answer = ListOffsetsTopicResponse::default();
            answer.name = topic.name.clone();
            for wanted in &topic.partitions {
                let mut partition = ListOffsetsPartitionResponse::default();
                partition.partition_index = wanted.partition_index;
                partition.timestamp = -1;
                partition.offset = -1;
                partition.leader_epoch = -1;
                match self.leading(
                    topic.name.0.as_str(),
                    wanted.partition_index,
                    wanted.current_leader_epoch,
                ) {
                    Err(code) => partition.error_code = code,
                    Ok((local, replica)) => {
                        if version >= 4 {
                            partition.leader_epoch = local.leader().1;
                        }
                        match list_offset(&replica, wanted.timestamp) {
                            Ok(Some((offset, timestamp))) => {
                                partition.offset = offset;
                                partition.timestamp = timestamp;
                            }
                            Ok(None) => {}
                            Err(code) => partition.error_code = code,
                        }
                    }
                }
                answer.partitions.push(partition);
            }
            response.topics.push(answer);
        }
        response
    }

    pub(super) fn offset_for_leader_epoch(
        &self,
        request: &OffsetForLeaderEpochRequest,
    ) -> OffsetForLeaderEpochResponse {
        let mut response = OffsetForLeaderEpochResponse::default();
        for topic in &request.topics {
            let mut answer = OffsetForLeaderTopicResult::default();
            answer.topic = topic.topic.clone();
            for wanted in &topic.partitions {
                let mut partition = EpochEndOffset::default();
                partition.partition = wanted.partition;
                partition.leader_epoch = -1;
                partition.end_offset = -1;
                match self.leading(
                    topic.topic.0.as_str(),
                    wanted.partition,
                    wanted.current_leader_epoch,
                ) {
                    Err(code) => partition.error_code = code,
                    Ok((_, replica)) => {
                        if let Some((epoch, end)) =
                            replica.log().end_offset_for_epoch(wanted.leader_epoch)
                        {
                            partition.leader_epoch = epoch;
                            partition.end_offset = end as i64;
                        }
                    }
                }
                answer.partitions.push(partition);
            }
            response.topics.push(answer);
        }
        response
    }
}

/// ListOffsets for one partition: `-2` earliest, `-1` latest (the high watermark: records
/// above it are not visible to consumers), `-3` the record with the largest timestamp, else
/// the first offset at or after the timestamp. Answers (offset, timestamp).
fn list_offset(replica: &Replica, timestamp: i64) -> Result<Option<(i64, i64)>, i16> {
    let log = replica.log();
    let high_watermark = replica.high_watermark();
    let visible = |found: Option<(u64, i64)>| {
        found
            .filter(|(offset, _)| *offset < high_watermark)
            .map(|(offset, timestamp)| (offset as i64, timestamp))
    };
    match timestamp {
        -2 => Ok(Some((log.log_start_offset() as i64, -1))),
        -1 => Ok(Some((high_watermark as i64, -1))),
        -3 => log
            .max_timestamp()
            .map(visible)
            .map_err(|error| errors::code_of_log(&error)),
        t if t >= 0 => log
            .offset_for_timestamp(t)
            .map(visible)
            .map_err(|error| errors::code_of_log(&error)),
        _ => Err(errors::INVALID_REQUEST),
    }
}
