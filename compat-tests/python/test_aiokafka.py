"""aiokafka (asyncio, its own protocol code; codecs through cramjam), used as its documentation shows. Each test runs
its coroutine with asyncio.run, so no pytest plugin is needed."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import InvalidTopicError, TopicAlreadyExistsError

from conftest import CODECS


async def create_topic(broker, name, partitions=1):
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def read_all(broker, topic, count, **config):
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, **config)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + 30
        while len(out) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


def test_metadata_lists_the_broker_and_topics(broker, topic):
    async def scenario():
        await create_topic(broker, topic, partitions=3)
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
            assert len(cluster["brokers"]) == 1
            node = cluster["brokers"][0]
            assert f"{node['host']}:{node['port']}" == broker.bootstrap
            assert cluster["controller_id"] == node["node_id"]
            (described,) = await admin.describe_topics([topic])
            assert described["error_code"] == 0
            assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2]
        finally:
            await admin.close()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            assert topic in await consumer.topics()
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_admin_creates_and_deletes_topics(broker, topic):
    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(topic, num_partitions=2, replication_factor=1), NewTopic(topic + "-b", 1, 1)]
            )
            assert {topic, topic + "-b"} <= set(await admin.list_topics())
            with pytest.raises(TopicAlreadyExistsError):
                response = await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
                raise_topic_errors(response)
            with pytest.raises(InvalidTopicError):
                response = await admin.create_topics([NewTopic("bad/name", 1, 1)])
                raise_topic_errors(response)
            await admin.delete_topics([topic, topic + "-b"])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and topic in await admin.list_topics():
                await asyncio.sleep(0.2)
            assert topic not in await admin.list_topics()
        finally:
            await admin.close()

    asyncio.run(scenario())


def raise_topic_errors(response):
    """aiokafka returns CreateTopics errors in the response instead of raising them."""
    from aiokafka.errors import for_code

    for topic_result in response.topic_errors:
        code = topic_result[1]
        if code:
            raise for_code(code)()


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(broker, topic, codec):
    async def scenario():
        await create_topic(broker, topic)
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap,
            compression_type=None if codec == "none" else codec,
            acks="all",
            linger_ms=5,
        )
        await producer.start()
        records = [(f"k{i}".encode(), f"value {i} ".encode() * 20, [("h", str(i).encode())]) for i in range(50)]
        try:
            futures = [await producer.send(topic, key=k, value=v, headers=h) for k, v, h in records]
            offsets = [(await f).offset for f in futures]
        finally:
            await producer.stop()
        assert offsets == list(range(len(records)))
        got = await read_all(broker, topic, len(records))
        assert [r.offset for r in got] == offsets
        assert [(r.key, r.value, list(r.headers)) for r in got] == [(k, v, h) for k, v, h in records]

    asyncio.run(scenario())


def test_idempotent_producer(broker, topic):
    """aiokafka's idempotent producer (enable_idempotence=True): InitProducerId, then sequenced batches."""
    broker.require_idempotence()

    async def scenario():
        await create_topic(broker, topic)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            futures = [await producer.send(topic, value=f"v{i}".encode()) for i in range(30)]
            offsets = [(await f).offset for f in futures]
        finally:
            await producer.stop()
        assert offsets == list(range(30))
        got = await read_all(broker, topic, 30)
        assert [r.value for r in got] == [f"v{i}".encode() for i in range(30)]

    asyncio.run(scenario())


def test_list_offsets_earliest_latest_and_by_time(broker, topic):
    async def scenario():
        await create_topic(broker, topic)
        base_ms = int(time.time() * 1000) - 100_000
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, value=b"x", timestamp_ms=base_ms + i * 1000)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            assert await consumer.beginning_offsets([tp]) == {tp: 0}
            assert await consumer.end_offsets([tp]) == {tp: 10}
            found = (await consumer.offsets_for_times({tp: base_ms + 4500}))[tp]
            assert (found.offset, found.timestamp) == (5, base_ms + 5000)
            assert (await consumer.offsets_for_times({tp: base_ms + 60_000}))[tp] is None
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_consumer_group_subscribe_and_commit(broker, topic):
    broker.require_groups()

    async def scenario():
        await create_topic(broker, topic, partitions=2)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for i in range(20):
                await producer.send_and_wait(topic, value=f"v{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id="py-aiokafka",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            seen = []
            deadline = time.monotonic() + 60
            while len(seen) < 20 and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen.extend(r.value for r in records)
            assert sorted(seen) == sorted(f"v{i}".encode() for i in range(20))
            await consumer.commit()
            committed = [await consumer.committed(TopicPartition(topic, p)) for p in (0, 1)]
            assert sum(committed) == 20
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_transactions_commit_and_abort(broker, topic):
    """Committed transactions are visible to a read_committed consumer, an aborted one is not (its records are in
    the log, acknowledged before the abort, and a read_uncommitted consumer sees them)."""
    broker.require_transactions()

    async def scenario():
        await create_topic(broker, topic)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="py-aiokafka-txn")
        await producer.start()
        try:
            for name, end in [("c", "commit"), ("a", "abort"), ("d", "commit")]:
                await producer.begin_transaction()
                futures = [await producer.send(topic, value=f"{name}{i}".encode()) for i in range(5)]
                for f in futures:
                    await f
                if end == "commit":
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
        committed = await read_all(broker, topic, 10, isolation_level="read_committed")
        assert [r.value for r in committed] == [f"{n}{i}".encode() for n in "cd" for i in range(5)]
        everything = await read_all(broker, topic, 15, isolation_level="read_uncommitted")
        assert [r.value for r in everything] == [f"{n}{i}".encode() for n in "cad" for i in range(5)]

    asyncio.run(scenario())


def test_send_offsets_to_transaction(broker, topic):
    """Consume-transform-produce: the group's offsets commit with the transaction that wrote the output."""
    broker.require_transactions()
    output = topic + "-out"

    async def scenario():
        await create_topic(broker, topic)
        await create_topic(broker, output)
        plain = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await plain.start()
        try:
            for i in range(10):
                await plain.send_and_wait(topic, value=f"v{i}".encode())
        finally:
            await plain.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id="py-aiokafka-txn",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            seen = []
            deadline = time.monotonic() + 60
            while len(seen) < 10 and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    seen.extend(r.value for r in records)
            assert len(seen) == 10
            tp = TopicPartition(topic, 0)
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="py-aiokafka-ctp")
            await producer.start()
            try:
                async with producer.transaction():
                    for value in seen:
                        await producer.send(output, value=value.upper())
                    await producer.send_offsets_to_transaction({tp: await consumer.position(tp)}, "py-aiokafka-txn")
            finally:
                await producer.stop()
            assert await consumer.committed(tp) == 10
        finally:
            await consumer.stop()
        got = await read_all(broker, output, 10, isolation_level="read_committed")
        assert [r.value for r in got] == [f"V{i}".encode() for i in range(10)]

    asyncio.run(scenario())
