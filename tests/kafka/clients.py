"""Kafka's own Python clients against a logbus broker (driven by tests/kafka_clients.rs).

Each subcommand prints one JSON document on stdout; the Rust test checks it against the broker.
    metadata BOOTSTRAP TOPIC                  kafka-python: brokers and partitions of TOPIC
    produce BOOTSTRAP TOPIC COUNT             confluent-kafka, keyed, acks=all, idempotent
    produce_python BOOTSTRAP TOPIC COUNT      kafka-python, keyed, acks=all, idempotent
    consume BOOTSTRAP TOPIC COUNT             kafka-python, from the beginning, no group
    group BOOTSTRAP TOPIC GROUP COUNT         two confluent-kafka members share TOPIC, commit
    resume BOOTSTRAP TOPIC GROUP COUNT        one member of GROUP reads COUNT records from the commit
    latency BOOTSTRAP TOPIC COUNT             confluent-kafka, one acks=all record at a time (bench)
    admin BOOTSTRAP GROUP                     kafka-python admin: create/delete topics, groups
"""

import json
import sys
import threading
import time


def metadata(bootstrap, topic):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    partitions = consumer.partitions_for_topic(topic)
    brokers = [
        {"id": getattr(b, "node_id", getattr(b, "nodeId", None)), "host": b.host, "port": b.port}
        for b in consumer._client.cluster.brokers()
    ]
    topics = sorted(consumer.topics())
    consumer.close()
    return {"partitions": sorted(partitions or []), "brokers": brokers, "topics": topics}


def produce(bootstrap, topic, count):
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            # librdkafka's default is CRC32-based; murmur2 is the Java client's partitioner.
            "partitioner": "murmur2_random",
        }
    )
    delivered = []
    errors = []

    def on_delivery(error, message):
        if error is not None:
            errors.append(str(error))
        else:
            delivered.append(
                {
                    "key": message.key().decode(),
                    "value": message.value().decode(),
                    "partition": message.partition(),
                    "offset": message.offset(),
                }
            )

    for i in range(count):
        producer.produce(topic, key=f"key-{i}", value=f"value-{i}", on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(30)
    return {"delivered": delivered, "errors": errors, "undelivered": remaining}


def produce_python(bootstrap, topic, count):
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    futures = [
        (i, producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode()))
        for i in range(count)
    ]
    delivered = []
    for i, future in futures:
        metadata = future.get(timeout=30)
        delivered.append(
            {
                "key": f"key-{i}",
                "value": f"value-{i}",
                "partition": metadata.partition,
                "offset": metadata.offset,
            }
        )
    producer.close()
    return {"delivered": delivered, "errors": [], "undelivered": 0}


def consume(bootstrap, topic, count):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
    )
    records = []
    for message in consumer:
        records.append(
            {
                "key": message.key.decode() if message.key is not None else None,
                "value": message.value.decode(),
                "partition": message.partition,
                "offset": message.offset,
            }
        )
        if len(records) >= count:
            break
    consumer.close()
    return {"records": records}


def member(bootstrap, group, name):
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": "range",
        }
    )


def group(bootstrap, topic, group_id, count):
    """Two members share the topic; each reads and commits what it was assigned. Both keep
    polling until together they have read `count` records and both hold partitions.

    Assignments are recorded by the rebalance callbacks, which run inside `poll` (asking a
    consumer for its assignment from another thread blocks while it polls)."""
    consumers = [member(bootstrap, group_id, f"member-{i}") for i in range(2)]
    lock = threading.Lock()
    assignments = [[] for _ in consumers]
    read = [[] for _ in consumers]

    def subscribe(index, consumer):
        def on_assign(_consumer, partitions):
            with lock:
                assignments[index] = sorted(p.partition for p in partitions)

        def on_revoke(_consumer, _partitions):
            with lock:
                assignments[index] = []

        consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)

    for index, consumer in enumerate(consumers):
        subscribe(index, consumer)
    deadline = time.time() + 60
    done = threading.Event()

    def settled():
        with lock:
            return sum(len(r) for r in read) >= count and all(assignments)

    def run(index, consumer):
        while not done.is_set() and time.time() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            with lock:
                read[index].append(
                    {
                        "partition": message.partition(),
                        "offset": message.offset(),
                        "value": message.value().decode(),
                    }
                )
            consumer.commit(message=message, asynchronous=False)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(consumers)]
    for thread in threads:
        thread.start()
    while time.time() < deadline and not settled():
        time.sleep(0.1)
    with lock:
        final = [list(a) for a in assignments]
    done.set()
    for thread in threads:
        thread.join()
    for consumer in consumers:
        consumer.close()
    return {"assignments": final, "read": read}


def resume(bootstrap, topic, group_id, count):
    consumer = member(bootstrap, group_id, "resumer")
    consumer.subscribe([topic])
    records = []
    deadline = time.time() + 30
    while len(records) < count and time.time() < deadline:
        message = consumer.poll(0.2)
        if message is None or message.error() is not None:
            continue
        records.append(
            {
                "partition": message.partition(),
                "offset": message.offset(),
                "value": message.value().decode(),
            }
        )
        consumer.commit(message=message, asynchronous=False)
    # A little longer: anything beyond `count` would be a record read twice.
    end = time.time() + 1
    while time.time() < end:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            records.append(
                {
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "value": message.value().decode(),
                }
            )
    consumer.close()
    return {"records": records}


def latency(bootstrap, topic, count):
    """One 100-byte record at a time, acks=all: the time from produce to its delivery report,
    in microseconds (after a warm-up of 200 records)."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
        }
    )
    value = b"x" * 100
    samples = []
    for i in range(count + 200):
        started = time.perf_counter()
        producer.produce(topic, value=value)
        if producer.flush(30) != 0:
            raise SystemExit("a record was not delivered in 30 s")
        if i >= 200:
            samples.append((time.perf_counter() - started) * 1e6)
    return {"samples_us": samples}


def admin(bootstrap, group_id):
    """kafka-python's admin client: create two topics (one with a config), list and describe
    groups, read a group's committed offsets, delete a topic; returns what it saw."""
    from kafka.admin import KafkaAdminClient, NewTopic

    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    client.create_topics(
        [
            NewTopic("admin-a", num_partitions=3, replication_factor=1),
            NewTopic(
                "admin-b",
                num_partitions=2,
                replication_factor=1,
                topic_configs={"retention.ms": "3600000"},
            ),
        ]
    )
    duplicate = None
    try:
        client.create_topics([NewTopic("admin-a", num_partitions=1, replication_factor=1)])
    except Exception as error:  # TopicAlreadyExistsError
        duplicate = type(error).__name__
    # kafka-python 3's admin answers dicts.
    groups = sorted(g["group_id"] for g in client.list_groups())
    described = client.describe_groups([group_id])[group_id]
    offsets = client.list_group_offsets({group_id: None})[group_id]
    client.delete_topics(["admin-b"])
    client.close()
    return {
        "duplicate_error": duplicate,
        "groups": groups,
        "described": {"group": described["group_id"], "state": described["group_state"]},
        "offsets": sorted([tp.topic, tp.partition, meta.offset] for tp, meta in offsets.items()),
    }


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "metadata":
        result = metadata(args[0], args[1])
    elif command == "produce":
        result = produce(args[0], args[1], int(args[2]))
    elif command == "produce_python":
        result = produce_python(args[0], args[1], int(args[2]))
    elif command == "consume":
        result = consume(args[0], args[1], int(args[2]))
    elif command == "group":
        result = group(args[0], args[1], args[2], int(args[3]))
    elif command == "admin":
        result = admin(args[0], args[1])
    elif command == "latency":
        result = latency(args[0], args[1], int(args[2]))
    elif command == "resume":
        result = resume(args[0], args[1], args[2], int(args[3]))
    else:
        raise SystemExit(f"unknown command {command}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
