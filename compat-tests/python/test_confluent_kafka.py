"""confluent-kafka-python (its own librdkafka, newer than the rdkafka crate's), used as its documentation shows."""

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import CODECS


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create_topic(broker, name, partitions=1):
    client = admin(broker)  # must outlive the futures it hands out
    futures = client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)


def produce(broker, topic, records, **conf):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, **conf})
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    for key, value, headers in records:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
    assert producer.flush(30) == 0, "records still in flight after 30 s"
    assert errors == []


def read_all(broker, topic, count, partition=0, **conf):
    """Assigned (no group) consumption from the beginning of one partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "unused-with-assign",
            "enable.auto.commit": False,
            **conf,
        }
    )
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        out.append(msg)
    consumer.close()
    return out


def test_metadata_lists_the_broker_and_topics(broker, topic):
    create_topic(broker, topic, partitions=3)
    metadata = admin(broker).list_topics(timeout=10)
    assert len(metadata.brokers) == 1
    (node,) = metadata.brokers.values()
    assert f"{node.host}:{node.port}" == broker.bootstrap
    assert metadata.cluster_id
    assert metadata.controller_id == node.id
    assert sorted(metadata.topics[topic].partitions) == [0, 1, 2]
    for partition in metadata.topics[topic].partitions.values():
        assert partition.leader == node.id
        assert partition.replicas == [node.id]
        assert partition.isrs == [node.id]


def test_admin_creates_and_deletes_topics(broker, topic):
    client = admin(broker)
    futures = client.create_topics(
        [NewTopic(topic, num_partitions=2, replication_factor=1), NewTopic(topic + "-b", num_partitions=1)]
    )
    for future in futures.values():
        future.result(timeout=30)
    assert {topic, topic + "-b"} <= set(client.list_topics(timeout=10).topics)

    again = client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic]
    with pytest.raises(KafkaException) as exists:
        again.result(timeout=30)
    assert exists.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    bad = client.create_topics([NewTopic("bad/name", num_partitions=1, replication_factor=1)])["bad/name"]
    with pytest.raises(KafkaException) as invalid:
        bad.result(timeout=30)
    assert invalid.value.args[0].code() == KafkaError.TOPIC_EXCEPTION

    for future in client.delete_topics([topic, topic + "-b"], operation_timeout=30).values():
        future.result(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and topic in client.list_topics(timeout=10).topics:
        time.sleep(0.2)
    assert topic not in client.list_topics(timeout=10).topics


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(broker, topic, codec):
    create_topic(broker, topic)
    records = [(f"k{i}".encode(), f"value {i} ".encode() * 20, [("h", str(i).encode())]) for i in range(50)]
    records.append((None, None, None))  # a tombstone-shaped record: null key and value
    produce(broker, topic, records, **{"compression.type": codec})
    got = read_all(broker, topic, len(records))
    assert [m.offset() for m in got] == list(range(len(records)))
    assert [(m.key(), m.value()) for m in got] == [(k, v) for k, v, _ in records]
    assert [m.headers() for m in got[:-1]] == [h for _, _, h in records[:-1]]


def test_list_offsets_earliest_latest_and_by_time(broker, topic):
    create_topic(broker, topic)
    base_ms = int(time.time() * 1000) - 100_000
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        producer.produce(topic, value=b"x", timestamp=base_ms + i * 1000)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)
    found = consumer.offsets_for_times([TopicPartition(topic, 0, base_ms + 4500)], timeout=10)
    assert found[0].offset == 5
    beyond = consumer.offsets_for_times([TopicPartition(topic, 0, base_ms + 60_000)], timeout=10)
    assert beyond[0].offset == -1  # no record that late: Kafka answers offset -1
    consumer.close()


def test_idempotent_producer(broker, topic):
    """confluent-kafka with enable.idempotence=true: librdkafka's idempotent producer end to end."""
    broker.require_idempotence()
    create_topic(broker, topic)
    produce(broker, topic, [(None, f"v{i}".encode(), None) for i in range(30)], **{"enable.idempotence": True})
    got = read_all(broker, topic, 30)
    assert [m.value() for m in got] == [f"v{i}".encode() for i in range(30)]
    assert [m.offset() for m in got] == list(range(30))


def test_consumer_group_subscribe_and_commit(broker, topic):
    broker.require_groups()
    create_topic(broker, topic, partitions=2)
    # Keyed, so both partitions get records: librdkafka's sticky partitioner may put 20 keyless records in one,
    # and a partition the consumer read nothing from has no offset to commit (committed() answers -1001 for it).
    produce(broker, topic, [(f"k{i}".encode(), f"v{i}".encode(), None) for i in range(20)])
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "py-confluent",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 20 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
    assert sorted(seen) == sorted(f"v{i}".encode() for i in range(20))
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    assert all(tp.offset > 0 for tp in committed), committed
    assert sum(tp.offset for tp in committed) == 20
    consumer.close()


def transactional_producer(broker, transactional_id):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": transactional_id, "linger.ms": 5})
    producer.init_transactions(30)
    return producer


def test_transactions_commit_and_abort(broker, topic):
    """Committed transactions are visible to a read_committed consumer, an aborted one is not (its records are in
    the log, flushed before the abort, and a read_uncommitted consumer sees them)."""
    broker.require_transactions()
    create_topic(broker, topic)
    producer = transactional_producer(broker, "py-confluent-txn")
    for name, end in [("c", "commit"), ("a", "abort"), ("d", "commit")]:
        producer.begin_transaction()
        for i in range(5):
            producer.produce(topic, value=f"{name}{i}".encode())
        producer.flush(30)
        if end == "commit":
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    committed = read_all(broker, topic, 10, **{"isolation.level": "read_committed"})
    assert [m.value() for m in committed] == [f"{n}{i}".encode() for n in "cd" for i in range(5)]
    everything = read_all(broker, topic, 15, **{"isolation.level": "read_uncommitted"})
    assert [m.value() for m in everything] == [f"{n}{i}".encode() for n in "cad" for i in range(5)]


def test_send_offsets_to_transaction(broker, topic):
    """Consume-transform-produce: the group's offsets commit with the transaction that wrote the output."""
    broker.require_transactions()
    output = topic + "-out"
    create_topic(broker, topic)
    create_topic(broker, output)
    produce(broker, topic, [(None, f"v{i}".encode(), None) for i in range(10)])
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "py-confluent-txn",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 10 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append(msg.value())
    assert len(seen) == 10

    producer = transactional_producer(broker, "py-confluent-ctp")
    producer.begin_transaction()
    for value in seen:
        producer.produce(output, value=value.upper())
    producer.send_offsets_to_transaction(
        consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
    )
    producer.commit_transaction(30)

    (committed,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    assert committed.offset == 10
    consumer.close()
    got = read_all(broker, output, 10, **{"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [f"V{i}".encode() for i in range(10)]
