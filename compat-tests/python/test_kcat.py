"""Debian's kcat (librdkafka 2.0.2, the oldest librdkafka we meet) as a shell user drives it. kcat has no admin
commands: topics are auto-created by producing, as kcat users rely on."""

import json
import shutil
import subprocess
import time

import pytest

from conftest import CODECS

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="no kcat: scripts/test.sh installs it")


def kcat(broker, *args, stdin=None):
    result = subprocess.run(
        ["kcat", "-b", broker.bootstrap, *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"kcat {args} failed: {result.stderr}"
    return result.stdout


def test_metadata_lists_the_broker_and_an_auto_created_topic(broker, topic):
    kcat(broker, "-P", "-t", topic, stdin="x\n")
    listing = json.loads(kcat(broker, "-L", "-J"))
    (node,) = listing["brokers"]
    assert node["name"] == broker.bootstrap
    (described,) = [t for t in listing["topics"] if t["topic"] == topic]
    assert [p["partition"] for p in described["partitions"]] == [0]
    assert described["partitions"][0]["leader"] == node["id"]


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(broker, topic, codec):
    lines = "".join(f"k{i}:value {i}\n" for i in range(50))
    args = ["-P", "-t", topic, "-K", ":"]
    if codec != "none":
        args += ["-z", codec]
    kcat(broker, *args, stdin=lines)
    out = kcat(broker, "-C", "-t", topic, "-o", "0", "-e", "-q", "-f", "%k=%s@%o\n")
    assert out == "".join(f"k{i}=value {i}@{i}\n" for i in range(50))


def test_consume_from_beginning_and_query_offsets_by_time(broker, topic):
    """`-o beginning` and `-Q` ask ListOffsets (v2 from librdkafka 2.0.2)."""
    kcat(broker, "-P", "-t", topic, stdin="a\nb\nc\n")
    before = int(time.time() * 1000) - 60_000
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s@%o\n")
    assert out == "a@0\nb@1\nc@2\n"
    # -Q -t topic:partition:timestamp prints the first offset at or after the timestamp.
    assert kcat(broker, "-Q", "-t", f"{topic}:0:{before}") == f"{topic} [0] offset 0\n"
    assert kcat(broker, "-Q", "-t", f"{topic}:0:-1") == f"{topic} [0] offset 3\n"  # -1: latest
