"""A real Ferrite per test: target/debug/ferrite (or $FERRITE_BIN) on 127.0.0.1 with a free port and a temporary
data directory; the port is read from its "ferrite is listening" log line."""

import os
import re
import signal
import socket
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"ferrite is listening.*local_addr=([0-9.]+:[0-9]+)")


class Broker:
    def __init__(self, binary: Path, data_dir: Path, log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [
                str(binary),
                "--listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
                "--ops.listener=127.0.0.1:0",
                f"--log.dirs={data_dir}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.bootstrap = self._wait_listening()

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise RuntimeError(f"ferrite exited during start-up:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"ferrite did not report its address in 30 s:\n{self.log_path.read_text()}")

    def request(self, api_key: int, version: int, body: bytes) -> bytes:
        """One request with a v1 header over a raw socket; the response body after its correlation id."""
        client_id = b"compat-tests"
        frame = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id + body
        with socket.create_connection(tuple_addr(self.bootstrap), timeout=10) as s:
            s.sendall(struct.pack(">i", len(frame)) + frame)
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            return recv_exact(s, size)[4:]

    def api_versions(self) -> dict:
        """ApiVersions v0: {api_key: (min, max)} as this broker advertises them."""
        data = b"\0\0\0\0" + self.request(18, 0, b"")
        _correlation, error, count = struct.unpack(">ihi", data[:10])
        assert error == 0, f"ApiVersions error {error}"
        return {k: (lo, hi) for k, lo, hi in struct.iter_unpack(">hhh", data[10 : 10 + 6 * count])}

    def require_apis(self, apis: dict, why: str):
        """Tests of a feature the broker does not advertise yet xfail; they run for real once it does."""
        advertised = self.api_versions()
        missing = [name for key, name in apis.items() if key not in advertised]
        if missing:
            pytest.xfail(f"{why}; not advertised yet: {', '.join(missing)}")

    def require_groups(self):
        self.require_apis(
            {10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 14: "SyncGroup", 8: "OffsetCommit"},
            "consumer groups land with the group issue",
        )

    def require_idempotence(self):
        self.require_apis({22: "InitProducerId"}, "idempotent producers need InitProducerId")

    def require_transactions(self):
        self.require_apis(
            {
                22: "InitProducerId",
                24: "AddPartitionsToTxn",
                25: "AddOffsetsToTxn",
                26: "EndTxn",
                28: "TxnOffsetCommit",
            },
            "transactional producers land with issue 10",
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def tuple_addr(addr: str):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def ferrite_binary() -> Path:
    binary = Path(os.environ.get("FERRITE_BIN", ROOT / "target" / "debug" / "ferrite"))
    if not os.access(binary, os.X_OK):
        pytest.exit(f"{binary} missing: build it with `cargo build -p ferrite` or set FERRITE_BIN", returncode=3)
    return binary


@pytest.fixture
def broker(tmp_path):
    b = Broker(ferrite_binary(), tmp_path / "data", tmp_path / "ferrite.log")
    yield b
    code = b.stop()
    assert code == 0, f"ferrite did not stop cleanly on SIGTERM (exit {code}); log in {b.log_path}"


@pytest.fixture
def topic():
    return f"py-{uuid.uuid4().hex[:12]}"


# Record batches in each of Kafka's codecs. Every client must produce them and read them back.
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
