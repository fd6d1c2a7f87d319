//! Produce and InitProducerId.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};

use super::{partition_index, Handler};
use crate::kafka::errors::{self, code_of_broker};
use crate::record::RecordBatch;
use crate::replication::{AckLevel, PendingAppend};

impl Handler {
    pub(super) fn produce(&self, request: &ProduceRequest) -> ProduceResponse {
        let acks = match request.acks {
            -1 => AckLevel::All,
            _ => AckLevel::Leader,
        };
        let mut response = ProduceResponse::default();
        if request.transactional_id.is_some() {
            for topic in &request.topic_data {
                let mut answer = TopicProduceResponse::default();
                answer.name = topic.name.clone();
                for data in &topic.partition_data {
                    let mut partition = PartitionProduceResponse::default();
                    partition.index = data.index;
                    partition.error_code = errors::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                    partition.base_offset = -1;
                    answer.partition_responses.push(partition);
                }
                response.responses.push(answer);
            }
            return response;
        }
        // Append everything first, then wait: the partitions replicate in parallel.
        let mut pending: Vec<(usize, usize, String, u32, Vec<PendingAppend>)> = Vec::new();
        for (t, topic) in request.topic_data.iter().enumerate() {
            let mut answer = TopicProduceResponse::default();
            answer.name = topic.name.clone();
            let name = topic.name.0.as_str();
            for (p, data) in topic.partition_data.iter().enumerate() {
                let mut partition = PartitionProduceResponse::default();
                partition.index = data.index;
                partition.base_offset = -1;
                partition.log_append_time_ms = -1;
                partition.log_start_offset = -1;
                let appended = match partition_index(data.index) {
                    Some(index) => self.append_all(name, index, data.records.as_ref(), acks),
                    None => Err(errors::UNKNOWN_TOPIC_OR_PARTITION),
                };
                match appended {
                    Ok(appends) => {
                        if let Some(first) = appends.first() {
                            partition.base_offset = first.result.base_offset as i64;
                            partition.log_append_time_ms =
                                first.result.log_append_time.unwrap_or(-1);
                        }
                        pending.push((t, p, name.to_owned(), data.index as u32, appends));
                    }
                    Err(code) => partition.error_code = code,
                }
                answer.partition_responses.push(partition);
            }
            response.responses.push(answer);
        }
        for (t, p, name, index, appends) in pending {
            let mut code = errors::NONE;
            for append in &appends {
                if let Err(error) = self.broker.wait_append(&name, index, append) {
                    code = code_of_broker(&error);
                    break;
                }
            }
            let partition = &mut response.responses[t].partition_responses[p];
            partition.error_code = code;
            if code != errors::NONE {
                partition.base_offset = -1;
            } else if let Ok(replica) = self.broker.replica(&name, index) {
                partition.log_start_offset = replica.log().log_start_offset() as i64;
            }
        }
        response
    }

    /// Appends every batch of one partition's records, in order; stops at the first failure.
    fn append_all(
        &self,
        topic: &str,
        partition: u32,
        records: Option<&Bytes>,
        acks: AckLevel,
    ) -> Result<Vec<PendingAppend>, i16> {
        let Some(records) = records else {
            return Err(errors::CORRUPT_MESSAGE);
        };
        let mut rest = records.clone();
        let mut appends = Vec::new();
        while !rest.is_empty() {
            let (batch, tail) =
                RecordBatch::split_from(&rest, rest.len()).map_err(|_| errors::CORRUPT_MESSAGE)?;
            rest = tail;
            let append = self
                .broker
                .append(topic, partition, &batch, acks)
                .map_err(|error| code_of_broker(&error))?;
            appends.push(append);
        }
        if appends.is_empty() {
            return Err(errors::CORRUPT_MESSAGE);
        }
        Ok(appends)
    }

    pub(super) fn init_producer_id(
        &self,
        request: &InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let mut response = InitProducerIdResponse::default();
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
        if request.transactional_id.is_some() {
            // Transactions are not built: say so in the client's terms.
            response.error_code = errors::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            return response;
        }
        match self.broker.init_producer_id() {
            Ok((id, epoch)) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = epoch;
            }
            Err(error) => response.error_code = code_of_broker(&error),
        }
        response
    }
}
