//! OffsetCommit and OffsetFetch: a group's committed offsets.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{partition_index, text, topic_name, Handler};
use crate::group::{CommitRequest, GroupError, OffsetAndMetadata, TopicPartition};
use crate::kafka::errors::{self, code_of_group};

impl Handler {
    pub(super) fn offset_commit(&self, request: &OffsetCommitRequest) -> OffsetCommitResponse {
        let now_ms = self.broker.clock().now_ms();
        let mut offsets = Vec::new();
        let mut invalid = Vec::new();
        for topic in &request.topics {
            for partition in &topic.partitions {
                match (
                    partition_index(partition.partition_index),
                    u64::try_from(partition.committed_offset),
                ) {
                    (Some(index), Ok(offset)) => offsets.push((
                        TopicPartition {
                            topic: topic.name.0.to_string(),
                            partition: index,
                        },
                        OffsetAndMetadata {
                            offset,
                            leader_epoch: (partition.committed_leader_epoch >= 0)
                                .then_some(partition.committed_leader_epoch),
                            metadata: partition
                                .committed_metadata
                                .as_ref()
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                            commit_timestamp_ms: now_ms,
                        },
                    )),
                    _ => invalid.push((topic.name.0.to_string(), partition.partition_index)),
                }
            }
        }
        let commit = CommitRequest {
            member: Self::member(
                &request.group_id,
                &request.member_id,
                request.group_instance_id.as_ref(),
                request.generation_id_or_member_epoch,
            ),
            offsets,
        };
        let code = match self.groups().and_then(|groups| {
            groups
                .commit_offsets(&commit)
                .map_err(|error| code_of_group(&error))
        }) {
            Ok(()) => errors::NONE,
            Err(code) => code,
        };
        let mut response = OffsetCommitResponse::default();
        for topic in &request.topics {
            let mut answer = OffsetCommitResponseTopic::default();
            answer.name = topic.name.clone();
            for partition in &topic.partitions {
                let mut result = OffsetCommitResponsePartition::default();
                result.partition_index = partition.partition_index;
                result.error_code = if invalid
                    .iter()
                    .any(|(t, p)| t == topic.name.0.as_str() && *p == partition.partition_index)
                {
                    errors::INVALID_COMMIT_OFFSET_SIZE
                } else {
                    code
                };
                answer.partitions.push(result);
            }
            response.topics.push(answer);
        }
        response
    }

    pub(super) fn offset_fetch(
        &self,
        version: i16,
        request: &OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        let response = self.offset_fetch_all(request);
        match response {
            Ok(response) => response,
            Err(code) => {
                let mut response = OffsetFetchResponse::default();
                if version >= 2 {
                    response.error_code = code;
                } else {
                    // v1 has no top-level error: every requested partition carries it.
                    for topic in request.topics.iter().flatten() {
                        let mut answer = OffsetFetchResponseTopic::default();
                        answer.name = topic.name.clone();
                        for &index in &topic.partition_indexes {
                            let mut partition = OffsetFetchResponsePartition::default();
                            partition.partition_index = index;
                            partition.committed_offset = -1;
                            partition.error_code = code;
                            answer.partitions.push(partition);
                        }
                        response.topics.push(answer);
                    }
                }
                response
            }
        }
    }

    fn offset_fetch_all(&self, request: &OffsetFetchRequest) -> Result<OffsetFetchResponse, i16> {
        let mut response = OffsetFetchResponse::default();
        let groups = self.groups()?;
        let group = request.group_id.0.as_str();
        let wanted: Option<Vec<TopicPartition>> = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .flat_map(|topic| {
                    topic
                        .partition_indexes
                        .iter()
                        .filter_map(|&index| partition_index(index))
                        .map(|partition| TopicPartition {
                            topic: topic.name.0.to_string(),
                            partition,
                        })
                })
                .collect()
        });
        let committed = match groups.committed(group, wanted.as_deref()) {
            Ok(committed) => committed,
            Err(GroupError::GroupIdNotFound { .. }) => BTreeMap::new(),
            Err(error) => return Err(code_of_group(&error)),
        };
        let answer_partition = |index: i32, found: Option<&OffsetAndMetadata>| {
            let mut partition = OffsetFetchResponsePartition::default();
            partition.partition_index = index;
            partition.committed_offset = -1;
            partition.committed_leader_epoch = -1;
            partition.metadata = Some(StrBytes::default());
            if let Some(found) = found {
                partition.committed_offset = found.offset as i64;
                partition.committed_leader_epoch = found.leader_epoch.unwrap_or(-1);
                partition.metadata = Some(text(&found.metadata));
            }
            partition
        };
        match &request.topics {
            Some(topics) => {
                for topic in topics {
                    let mut answer = OffsetFetchResponseTopic::default();
                    answer.name = topic.name.clone();
                    for &index in &topic.partition_indexes {
                        let found = partition_index(index).and_then(|partition| {
                            committed.get(&TopicPartition {
                                topic: topic.name.0.to_string(),
                                partition,
                            })
                        });
                        answer.partitions.push(answer_partition(index, found));
                    }
                    response.topics.push(answer);
                }
            }
            None => {
                let mut by_topic: BTreeMap<&str, OffsetFetchResponseTopic> = BTreeMap::new();
                for (tp, found) in &committed {
                    let answer = by_topic.entry(tp.topic.as_str()).or_insert_with(|| {
                        let mut answer = OffsetFetchResponseTopic::default();
                        answer.name = topic_name(&tp.topic);
                        answer
                    });
                    answer
                        .partitions
                        .push(answer_partition(tp.partition as i32, Some(found)));
                }
                response.topics = by_topic.into_values().collect();
            }
        }
        Ok(response)
    }
}
