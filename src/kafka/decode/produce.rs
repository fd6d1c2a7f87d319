//! Produce and InitProducerId bodies.

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProducerId, TopicName, TransactionalId,
};

use super::reader::Reader;
use super::DecodeError;

pub(super) fn produce(r: &mut Reader<'_>, _version: i16) -> Result<ProduceRequest, DecodeError> {
    let transactional_id = r.nullable_string("transactional_id")?;
    let acks = r.i16("acks")?;
    let timeout_ms = r.i32("timeout_ms")?;
    let topic_data = r.array("topic_data", topic_produce_data)?;
    let unknown_tagged_fields = r.tagged_fields("ProduceRequest")?;
    Ok(ProduceRequest::default()
        .with_transactional_id(transactional_id.map(TransactionalId))
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn topic_produce_data(r: &mut Reader<'_>) -> Result<TopicProduceData, DecodeError> {
    let name = r.string("topic_data.name")?;
    let partition_data = r.array("partition_data", partition_produce_data)?;
    let unknown_tagged_fields = r.tagged_fields("TopicProduceData")?;
    Ok(TopicProduceData::default()
        .with_name(TopicName(name))
        .with_partition_data(partition_data)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

fn partition_produce_data(r: &mut Reader<'_>) -> Result<PartitionProduceData, DecodeError> {
    let index = r.i32("partition_data.index")?;
    // The record batches stay a slice of the frame: no copy of the payload.
    let records = r.nullable_bytes("records")?;
    let unknown_tagged_fields = r.tagged_fields("PartitionProduceData")?;
    Ok(PartitionProduceData::default()
        .with_index(index)
        .with_records(records)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}

pub(super) fn init_producer_id(
    r: &mut Reader<'_>,
    version: i16,
) -> Result<InitProducerIdRequest, DecodeError> {
    let transactional_id = r.nullable_string("transactional_id")?;
    let transaction_timeout_ms = r.i32("transaction_timeout_ms")?;
    let producer_id = if version >= 3 {
        r.i64("producer_id")?
    } else {
        -1
    };
    let producer_epoch = if version >= 3 {
        r.i16("producer_epoch")?
    } else {
        -1
    };
    let unknown_tagged_fields = r.tagged_fields("InitProducerIdRequest")?;
    Ok(InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(TransactionalId))
        .with_transaction_timeout_ms(transaction_timeout_ms)
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(producer_epoch)
        .with_unknown_tagged_fields(unknown_tagged_fields))
}
