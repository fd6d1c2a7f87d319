//! Kafka record batches made by an independent implementation (kafka-python's
//! `DefaultRecordBatchBuilder`, see `tests/data/kafka-record-batches/README.md`): every header
//! decodes to the listed fields, every uncompressed batch's records decode to the listed records,
//! and the uncompressed CreateTime batches re-encode to the same bytes.

use bytes::Bytes;
use logbus::record::{
    Attributes, BatchBuilder, BatchSpec, Compression, DecodeError, Header, RecordBatch,
    TimestampType,
};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kafka-record-batches/vectors.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["vectors"].as_array().unwrap().clone()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn nullable_hex(value: &Value) -> Option<Vec<u8>> {
    value.as_str().map(hex)
}

fn batch_of(vector: &Value) -> RecordBatch {
    RecordBatch::from_bytes(Bytes::from(hex(vector["hex"].as_str().unwrap()))).unwrap()
}

#[test]
fn every_header_decodes_to_the_listed_fields() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 15);
    for vector in &vectors {
        let name = vector["name"].as_str().unwrap();
        let header = *batch_of(vector).header();
        let int = |field: &str| vector[field].as_i64().unwrap();
        assert_eq!(header.base_offset, int("base_offset"), "{name}");
        assert_eq!(
            i64::from(header.partition_leader_epoch),
            int("partition_leader_epoch"),
            "{name}"
        );
        assert_eq!(i64::from(header.magic), int("magic"), "{name}");
        assert_eq!(i64::from(header.crc), int("crc"), "{name}");
        assert_eq!(
            i64::from(header.attributes.encode()),
            int("attributes"),
            "{name}"
        );
        assert_eq!(
            header.attributes.compression.to_string(),
            vector["compression"].as_str().unwrap(),
            "{name}"
        );
        let timestamp_type = match header.attributes.timestamp_type {
            TimestampType::CreateTime => "create_time",
            TimestampType::LogAppendTime => "log_append_time",
        };
        assert_eq!(
            timestamp_type,
            vector["timestamp_type"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            header.attributes.is_transactional,
            vector["is_transactional"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(
            header.attributes.is_control,
            vector["is_control"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(
            i64::from(header.last_offset_delta),
            int("last_offset_delta"),
            "{name}"
        );
        assert_eq!(header.base_timestamp, int("base_timestamp"), "{name}");
        assert_eq!(header.max_timestamp, int("max_timestamp"), "{name}");
        assert_eq!(header.producer_id, int("producer_id"), "{name}");
        assert_eq!(
            i64::from(header.producer_epoch),
            int("producer_epoch"),
            "{name}"
        );
        assert_eq!(
            i64::from(header.base_sequence),
            int("base_sequence"),
            "{name}"
        );
        assert_eq!(
            i64::from(header.records_count),
            int("records_count"),
            "{name}"
        );
    }
}

#[test]
fn uncompressed_records_decode_to_the_listed_records() {
    let mut checked = 0;
    for vector in vectors()
        .iter()
        .filter(|vector| vector["compression"] == "none")
    {
        let name = vector["name"].as_str().unwrap();
        let decoded: Vec<_> = batch_of(vector)
            .records()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let expected = vector["records"].as_array().unwrap();
        assert_eq!(decoded.len(), expected.len(), "{name}");
        for (record, want) in decoded.iter().zip(expected) {
            assert_eq!(record.offset, want["offset"].as_i64().unwrap(), "{name}");
            assert_eq!(
                record.timestamp,
                want["timestamp"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(
                record.key.as_deref().map(<[u8]>::to_vec),
                nullable_hex(&want["key"]),
                "{name}"
            );
            assert_eq!(
                record.value.as_deref().map(<[u8]>::to_vec),
                nullable_hex(&want["value"]),
                "{name}"
            );
            let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = want["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| {
                    (
                        pair[0].as_str().unwrap().as_bytes().to_vec(),
                        nullable_hex(&pair[1]),
                    )
                })
                .collect();
            let decoded_headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = record
                .headers
                .iter()
                .map(|header| {
                    (
                        header.key.to_vec(),
                        header.value.as_deref().map(<[u8]>::to_vec),
                    )
                })
                .collect();
            assert_eq!(decoded_headers, headers, "{name}");
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} records checked");
}

#[test]
fn uncompressed_create_time_batches_re_encode_byte_for_byte() {
    let mut encoded = 0;
    for vector in vectors() {
        let name = vector["name"].as_str().unwrap();
        if vector["compression"] != "none" || vector["timestamp_type"] != "create_time" {
            continue;
        }
        let original = batch_of(&vector);
        let header = *original.header();
        let spec = BatchSpec {
            base_offset: header.base_offset,
            partition_leader_epoch: header.partition_leader_epoch,
            attributes: Attributes {
                ..header.attributes
            },
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
        };
        let mut builder = BatchBuilder::new(spec);
        for record in vector["records"].as_array().unwrap() {
            let key = nullable_hex(&record["key"]);
            let value = nullable_hex(&record["value"]);
            let headers: Vec<Header> = record["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| {
                    Header::new(
                        pair[0].as_str().unwrap().to_owned(),
                        nullable_hex(&pair[1]).map(Bytes::from),
                    )
                })
                .collect();
            let delta = (record["offset"].as_i64().unwrap() - header.base_offset) as i32;
            builder.append_at_delta(
                delta,
                record["timestamp"].as_i64().unwrap(),
                key.as_deref(),
                value.as_deref(),
                &headers,
            );
        }
        let rebuilt = builder.finish();
        assert_eq!(rebuilt.as_bytes(), original.as_bytes(), "{name}");
        encoded += 1;
    }
    assert_eq!(encoded, 10);
}

#[test]
fn compressed_headers_decode_and_records_report_the_codec() {
    let mut seen = Vec::new();
    for vector in vectors()
        .iter()
        .filter(|vector| vector["compression"] != "none")
    {
        let batch = batch_of(vector);
        let codec = batch.header().attributes.compression;
        assert_eq!(
            batch.records().unwrap_err(),
            DecodeError::UnsupportedCompression(codec)
        );
        seen.push(codec);
    }
    assert_eq!(
        seen,
        [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd
        ]
    );
}
