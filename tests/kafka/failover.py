#!/usr/bin/env python3
"""confluent-kafka clients for tests/kafka_failover.rs.

    failover.py create BOOTSTRAP TOPIC
        creates TOPIC with one partition, replication factor 3, min.insync.replicas 2
    failover.py produce BOOTSTRAP TOPIC MIDWAY AFTER
        sends numbered values continuously (acks=all, idempotent, murmur2); prints "midway" once
        MIDWAY have been acknowledged; when a line arrives on stdin (the test saw the new
        leader), sends AFTER more and stops
    failover.py consume BOOTSTRAP TOPIC
        reads the partition from offset 0 up to its high watermark

Each command ends by printing one JSON object on stdout.
"""

import json
import sys
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# Each command gives up after this long, so a broken cluster fails the test instead of hanging.
DEADLINE_S = 45.0


def create(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=1, replication_factor=3,
                   config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(30)
    print(json.dumps({"created": topic}))


def produce(bootstrap, topic, midway, after):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2",
        "linger.ms": 0,
        "message.timeout.ms": 30000,
        "retry.backoff.ms": 50,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "topic.metadata.refresh.interval.ms": 1000,
    })
    acked = []
    failed = []
    # The send index from which records count as sent after the failover.
    failed_over_at = [None]

    def on_delivery(error, message):
        index = int(message.value().decode()[1:])
        if error is None:
            acked.append([message.partition(), message.offset(), message.value().decode(), index])
        else:
            failed.append([message.value().decode(), str(error)])

    sent = [0]

    def watch_stdin():
        if sys.stdin.readline():
            failed_over_at[0] = sent[0]

    threading.Thread(target=watch_stdin, daemon=True).start()
    started = time.monotonic()
    told = False
    while time.monotonic() - started < DEADLINE_S:
        if failed_over_at[0] is not None and sent[0] >= failed_over_at[0] + after:
            break
        value = b"v%07d" % sent[0]
        try:
            producer.produce(topic, key=b"k%d" % (sent[0] % 16), value=value,
                             on_delivery=on_delivery)
            sent[0] += 1
        except BufferError:
            pass
        producer.poll(0.002)
        if not told and len(acked) >= midway:
            told = True
            print("midway", flush=True)
    left = producer.flush(30)
    boundary = failed_over_at[0]
    print(json.dumps({
        "sent": sent[0],
        "acked": acked,
        "failed": failed[:20],
        "failed_count": len(failed),
        "unfinished": left,
        "failed_over_at": boundary,
        "acked_after_failover": sum(1 for a in acked if boundary is not None and a[3] >= boundary),
    }))


def consume(bootstrap, topic):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "failover-check",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    partition = TopicPartition(topic, 0, 0)
    _, high = consumer.get_watermark_offsets(partition, timeout=10)
    consumer.assign([partition])
    records = []
    started = time.monotonic()
    while (not records or records[-1][1] < high - 1) and high > 0:
        if time.monotonic() - started > DEADLINE_S:
            break
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        records.append([message.partition(), message.offset(), message.value().decode()])
    consumer.close()
    print(json.dumps({"high_watermark": high, "records": records}))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "create":
        create(*args)
    elif command == "produce":
        produce(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "consume":
        consume(*args)
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
