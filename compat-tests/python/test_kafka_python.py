"""kafka-python (pure Python, its own protocol code), used as its documentation shows. Its codecs come from
python-snappy/cramjam, lz4 and zstandard (requirements.txt)."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import InvalidTopicError, TopicAlreadyExistsError

from conftest import CODECS


def admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)


def create_topic(broker, name, partitions=1):
    client = admin(broker)
    client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    client.close()


def assigned_consumer(broker, topic, partitions=(0,), **config):
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        **config,
    )
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    consumer.seek_to_beginning()
    return consumer


def read_all(broker, topic, count, **config):
    consumer = assigned_consumer(broker, topic, **config)
    out = []
    deadline = time.monotonic() + 30
    while len(out) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            out.extend(records)
    consumer.close()
    return out


def test_metadata_lists_the_broker_and_topics(broker, topic):
    create_topic(broker, topic, partitions=3)
    client = admin(broker)
    cluster = client.describe_cluster()
    assert len(cluster["brokers"]) == 1
    node = cluster["brokers"][0]
    assert f"{node['host']}:{node['port']}" == broker.bootstrap
    assert cluster["controller_id"] == node["broker_id"]
    (described,) = client.describe_topics([topic])
    assert described["error_code"] == 0
    assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2]
    client.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    assert topic in consumer.topics()
    assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    consumer.close()


def test_admin_creates_and_deletes_topics(broker, topic):
    client = admin(broker)
    client.create_topics(
        [NewTopic(topic, num_partitions=2, replication_factor=1), NewTopic(topic + "-b", 1, 1)]
    )
    assert {topic, topic + "-b"} <= set(client.list_topics())
    with pytest.raises(TopicAlreadyExistsError):
        client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    with pytest.raises(InvalidTopicError):
        client.create_topics([NewTopic("bad/name", num_partitions=1, replication_factor=1)])
    client.delete_topics([topic, topic + "-b"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and topic in client.list_topics():
        time.sleep(0.2)
    assert topic not in client.list_topics()
    client.close()


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(broker, topic, codec):
    create_topic(broker, topic)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=5,
        enable_idempotence=False,  # kafka-python 3 defaults to idempotence: see the test below
    )
    records = [(f"k{i}".encode(), f"value {i} ".encode() * 20, [("h", str(i).encode())]) for i in range(50)]
    futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in records]
    producer.flush(30)
    offsets = [f.get(timeout=30).offset for f in futures]
    assert offsets == list(range(len(records)))
    producer.close()

    got = read_all(broker, topic, len(records))
    assert [r.offset for r in got] == offsets
    assert [(r.key, r.value, list(r.headers)) for r in got] == [(k, v, h) for k, v, h in records]


def test_default_producer_is_idempotent(broker, topic):
    """kafka-python 3 producers, like Java's since Kafka 3.0, default to enable_idempotence=True."""
    broker.require_idempotence()
    create_topic(broker, topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    offsets = [producer.send(topic, value=f"v{i}".encode()).get(timeout=30).offset for i in range(5)]
    assert offsets == list(range(5))
    producer.close()


def test_idempotent_producer(broker, topic):
    """kafka-python with enable_idempotence=True set explicitly (strict: a conflicting setting would raise)."""
    broker.require_idempotence()
    create_topic(broker, topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, linger_ms=5)
    futures = [producer.send(topic, value=f"v{i}".encode()) for i in range(30)]
    producer.flush(30)
    assert [f.get(timeout=30).offset for f in futures] == list(range(30))
    producer.close()
    got = read_all(broker, topic, 30)
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(30)]


def test_list_offsets_earliest_latest_and_by_time(broker, topic):
    create_topic(broker, topic)
    base_ms = int(time.time() * 1000) - 100_000
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    for i in range(10):
        producer.send(topic, value=b"x", timestamp_ms=base_ms + i * 1000)
    producer.flush(30)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    tp = TopicPartition(topic, 0)
    assert consumer.beginning_offsets([tp]) == {tp: 0}
    assert consumer.end_offsets([tp]) == {tp: 10}
    found = consumer.offsets_for_times({tp: base_ms + 4500})[tp]
    assert (found.offset, found.timestamp) == (5, base_ms + 5000)
    assert consumer.offsets_for_times({tp: base_ms + 60_000})[tp] is None
    consumer.close()


def test_consumer_group_subscribe_and_commit(broker, topic):
    broker.require_groups()
    create_topic(broker, topic, partitions=2)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    for i in range(20):
        producer.send(topic, value=f"v{i}".encode())
    producer.flush(30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id="py-kafka-python",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 20 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            seen.extend(r.value for r in records)
    assert sorted(seen) == sorted(f"v{i}".encode() for i in range(20))
    consumer.commit()
    assert consumer.committed(TopicPartition(topic, 0)) + consumer.committed(TopicPartition(topic, 1)) == 20
    consumer.close()


def test_consumer_fetches_incrementally_in_a_fetch_session(broker, topic):
    """kafka-python 3 uses KIP-227 fetch sessions by default: a full fetch opens one, then incremental fetches that
    list only changed partitions. Records produced while the session is open must arrive through it."""
    create_topic(broker, topic, partitions=3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False)

    def produce(first, count):
        for i in range(first, first + count):
            producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 3)
        producer.flush(30)

    consumer = assigned_consumer(broker, topic, partitions=(0, 1, 2))
    produce(0, 30)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 30 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    # The first full fetch opened a session.
    (handler,) = consumer._fetcher._session_handlers.values()
    assert handler.next_metadata.session_id > 0
    session_id = handler.next_metadata.session_id

    produce(30, 30)
    while len(got) < 60 and time.monotonic() < deadline + 30:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(60))
    # The later records came through incremental fetches of that same session (an error would have reset it).
    assert handler.next_metadata.session_id == session_id
    assert handler.next_metadata.epoch > 1
    consumer.close()
    producer.close()


def transactional_producer(broker, transactional_id):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=transactional_id, linger_ms=5)
    producer.init_transactions()
    return producer


def test_transactions_commit_and_abort(broker, topic):
    """Committed transactions are visible to a read_committed consumer, an aborted one is not (its records are in
    the log, flushed before the abort, and a read_uncommitted consumer sees them)."""
    broker.require_transactions()
    create_topic(broker, topic)
    producer = transactional_producer(broker, "py-kafka-python-txn")
    for name, end in [("c", "commit"), ("a", "abort"), ("d", "commit")]:
        producer.begin_transaction()
        for i in range(5):
            producer.send(topic, value=f"{name}{i}".encode())
        producer.flush(30)
        if end == "commit":
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()

    committed = read_all(broker, topic, 10, isolation_level="read_committed")
    assert [r.value for r in committed] == [f"{n}{i}".encode() for n in "cd" for i in range(5)]
    everything = read_all(broker, topic, 15, isolation_level="read_uncommitted")
    assert [r.value for r in everything] == [f"{n}{i}".encode() for n in "cad" for i in range(5)]


def test_send_offsets_to_transaction(broker, topic):
    """Consume-transform-produce: the group's offsets commit with the transaction that wrote the output."""
    broker.require_transactions()
    output = topic + "-out"
    create_topic(broker, topic)
    create_topic(broker, output)
    plain = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    for i in range(10):
        plain.send(topic, value=f"v{i}".encode())
    plain.flush(30)
    plain.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id="py-kafka-python-txn",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 10 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            seen.extend(r.value for r in records)
    assert len(seen) == 10

    producer = transactional_producer(broker, "py-kafka-python-ctp")
    producer.begin_transaction()
    for value in seen:
        producer.send(output, value=value.upper())
    tp = TopicPartition(topic, 0)
    offsets = {tp: OffsetAndMetadata(consumer.position(tp), "", -1)}
    producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
    producer.commit_transaction()
    producer.close()

    assert consumer.committed(tp) == 10
    consumer.close()
    got = read_all(broker, output, 10, isolation_level="read_committed")
    assert [r.value for r in got] == [f"V{i}".encode() for i in range(10)]
