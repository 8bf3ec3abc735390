"""``fugong screening listen`` as it runs in production: the real command in a child process,
subscribed to the system Mosquitto (127.0.0.1:1883, or ``FUGONG_TEST_MQTT_PORT``), storing into
SQLite and PostgreSQL. Readings published with QoS 1 are stored, the fever raises its alarm, and
SIGTERM stops the listener cleanly with its tally; a listener killed mid-batch loses none of the
readings it had received, and stores none of them twice, once it comes back.

The listener commits from its own process, so each run gets a database of its own (a SQLite file,
a PostgreSQL schema) instead of the rolled-back test transaction. Its site code is unique, since
other listeners and benchmarks may share the broker; its persistent session is ended afterwards
so the broker does not keep queueing readings for it. Without a broker the test is skipped
loudly, and fails under CI=true."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fugong.db import make_engine, make_session_factory, migrate
from fugong.screening.models import ScreeningAlarm, ScreeningReading
from tests.conftest import need_service, pg_schema
from tests.integration.screening_sites import school_gate

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
PORT = int(os.environ.get("FUGONG_TEST_MQTT_PORT", "1883"))
READINGS = [("n1", 36.4), ("n2", 36.6), ("hot", 38.5), ("n3", 36.5), ("n4", 36.7)]
#: The listener as ``fugong screening listen`` runs it, with two trace lines of its own: a message
#: has reached its batch (unacknowledged), and a batch has committed. Its log says neither, and
#: the crash test must kill it between the two; the code paths themselves are unchanged.
TRACED = """
from fugong.screening.listener import Listener, log

on_message, store = Listener._on_message, Listener._store

def traced_on_message(self, client, userdata, msg):
    on_message(self, client, userdata, msg)
    log.info("trace: received on %s: %s", msg.topic, msg.payload.decode())

def traced_store(self, batch):
    store(self, batch)
    for m in batch:
        log.info("trace: committed on %s: %s", m.topic, m.payload.decode())

Listener._on_message, Listener._store = traced_on_message, traced_store

from fugong.cli import main
main()
"""


@pytest.fixture
def broker() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as e:
        need_service("Mosquitto", f"nothing accepts MQTT on {HOST}:{PORT} ({e})")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database the child process can reach by URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'listener.db'}"
        yield url
        return
    with pg_schema("fugong_listen") as url:
        yield url


@pytest.fixture
def gate(db_url: str) -> Iterator[tuple[sessionmaker[Session], str]]:
    """A school's gate with one camera; yields the session factory and the site code."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    code = f"listen-{uuid.uuid4().hex[:8]}"
    school_gate(factory, school="接收程序测试小学", nurse="listennurse", site=code)
    yield factory, code
    engine.dispose()


class Child:
    """``fugong screening listen`` in a child process; its stderr is kept for the messages."""

    def __init__(
        self, url: str, client_id: str, *, batch_ms: int = 50, traced: bool = False
    ) -> None:
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                TRACED if traced else "from fugong.cli import main; main()",
                "screening",
                "listen",
                "--host",
                HOST,
                "--port",
                str(PORT),
                "--client-id",
                client_id,
                "--batch-ms",
                str(batch_ms),
                "--health-every",
                "3600",
            ],
            env=dict(os.environ, FUGONG_DATABASE_URL=url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if "subscribed to" in line:
                self.subscribed.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def close(self) -> None:
        """Kill it if it still runs, and release its pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._drainer.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def _client(client_id: str, **connect: Any) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect(HOST, PORT, **connect)
    c.loop_start()
    return c


def wait_until_routed(
    child: Child, site: str, timeout: float = 20, *, seen: str = "refused on"
) -> None:
    """Wait until the broker routes this site's topic to the listener: "subscribed" in its log
    only says the SUBSCRIBE left, so probe with a reading from an unregistered camera, which
    the listener refuses with a log line naming the topic (``seen``: a traced listener says
    "trace: received on" at once, without waiting for its batch)."""
    topic = f"fugong/screening/{site}/probe/readings"
    c = _client(f"listen-probe-{uuid.uuid4().hex[:8]}")
    deadline = time.monotonic() + timeout
    try:
        while f"{seen} {topic}" not in child.output:
            assert time.monotonic() < deadline, f"no probe reached the listener:\n{child.output}"
            c.publish(topic, b"{}", qos=0)
            time.sleep(0.2)
    finally:
        c.loop_stop()
        c.disconnect()


def publish(site: str, readings: list[tuple[str, float]] = READINGS) -> list[str]:
    """The camera's readings, QoS 1; returns the payloads sent."""
    at = datetime.now(UTC) - timedelta(seconds=1)
    payloads = [
        json.dumps(
            {
                "device": "cam-1",
                "event_id": event,
                "time": (at + timedelta(milliseconds=i)).isoformat(),
                "temperature": temp,
            }
        )
        for i, (event, temp) in enumerate(readings)
    ]
    send(site, payloads)
    return payloads


def send(site: str, payloads: list[str]) -> None:
    """Publish with QoS 1: each is acknowledged by the broker before this returns."""
    c = _client(f"listen-cam-{uuid.uuid4().hex[:8]}")
    infos = [c.publish(f"fugong/screening/{site}/cam-1/readings", p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    c.loop_stop()
    c.disconnect()


def forget_session(client_id: str) -> None:
    """End the listener's persistent session: a clean start whose session expires on
    disconnect, so the shared broker stops queueing readings for a client that never returns."""
    c = _client(client_id, clean_start=True)
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()


def count(factory: sessionmaker[Session], model: type[ScreeningReading | ScreeningAlarm]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_listen_stores_qos1_readings_and_raises_the_fever_alarm(
    broker: None, db_url: str, gate: tuple[sessionmaker[Session], str]
) -> None:
    factory, site = gate
    client_id = f"fugong-test-listen-{uuid.uuid4().hex[:8]}"
    child = Child(db_url, client_id)
    try:
        assert child.subscribed.wait(30), f"listener did not subscribe:\n{child.output}"
        wait_until_routed(child, site)
        publish(site)
        deadline = time.monotonic() + 15
        while count(factory, ScreeningReading) < len(READINGS) and time.monotonic() < deadline:
            time.sleep(0.1)
        with factory() as s:
            stored = {
                r.event_id: (r.temperature_c, r.source) for r in s.scalars(select(ScreeningReading))
            }
            assert stored == {e: (t, "mqtt") for e, t in READINGS}, child.output
            (alarm,) = s.scalars(select(ScreeningAlarm)).all()
            assert alarm.temperature_c == 38.5 and alarm.rule == "threshold"
            assert alarm.status == "open" and alarm.device.code == "cam-1"
            assert alarm.reading_id == s.scalar(
                select(ScreeningReading.id).where(ScreeningReading.event_id == "hot")
            )
        # SIGTERM: the listener finishes its batch, disconnects and reports its tally.
        assert child.stop() == 0, child.output
        assert f"stored {len(READINGS)}, duplicates 0" in child.output
        assert "alarms 1" in child.output
    finally:
        child.close()
        forget_session(client_id)


def wait_for_lines(child: Child, lines: list[str], timeout: float = 15) -> None:
    """Wait until the child has logged every one of ``lines``."""
    deadline = time.monotonic() + timeout
    while missing := [line for line in lines if line not in child.output]:
        assert time.monotonic() < deadline, f"{missing[0]!r} not logged:\n{child.output}"
        time.sleep(0.05)


def test_listen_killed_mid_batch_loses_and_duplicates_no_reading(
    broker: None, db_url: str, gate: tuple[sessionmaker[Session], str]
) -> None:
    factory, site = gate
    topic = f"fugong/screening/{site}/cam-1/readings"
    readings = [(f"r{i:02d}", round(36.3 + (i % 5) * 0.1, 1)) for i in range(19)]
    readings.insert(7, ("hot", 38.6))
    client_id = f"fugong-test-crash-{uuid.uuid4().hex[:8]}"
    # A 10 s batch window: what it receives sits in its buffer, unacknowledged and uncommitted,
    # until the kill a second or two later.
    first = Child(db_url, client_id, batch_ms=10_000, traced=True)
    second: Child | None = None
    try:
        assert first.subscribed.wait(30), f"listener did not subscribe:\n{first.output}"
        wait_until_routed(first, site, seen="trace: received on")
        payloads = publish(site, readings)
        wait_for_lines(first, [f"trace: received on {topic}: {p}" for p in payloads])
        first.proc.send_signal(signal.SIGKILL)  # no clean shutdown: no last batch, no DISCONNECT
        assert first.proc.wait(timeout=10) == -signal.SIGKILL
        before = count(factory, ScreeningReading)
        # The kill came inside the window, so not every received reading was committed: the
        # rest exist only as the broker's unacknowledged deliveries.
        assert before < len(readings), first.output

        # The same client id resumes the persistent session; the broker redelivers.
        second = Child(db_url, client_id, batch_ms=50, traced=True)
        assert second.subscribed.wait(30), f"listener did not come back:\n{second.output}"
        deadline = time.monotonic() + 15
        while count(factory, ScreeningReading) < len(readings) and time.monotonic() < deadline:
            time.sleep(0.1)

        # The camera sends the fever again (the same event, as after a lost PUBACK); written
        # compactly, so that its bytes, and the trace line they give, tell it from the original.
        again = json.dumps(json.loads(payloads[7]), separators=(",", ":"))
        send(site, [again])
        wait_for_lines(second, [f"trace: committed on {topic}: {again}"])
        with factory() as s:
            stored = sorted(
                (r.event_id, r.temperature_c, r.source) for r in s.scalars(select(ScreeningReading))
            )
            assert stored == sorted((e, t, "mqtt") for e, t in readings), second.output
            (alarm,) = s.scalars(select(ScreeningAlarm)).all()
            assert alarm.temperature_c == 38.6 and alarm.rule == "threshold"
            assert alarm.reading_id == s.scalar(
                select(ScreeningReading.id).where(ScreeningReading.event_id == "hot")
            )
        assert second.stop() == 0, second.output
        tally = re.search(r"stored (\d+), duplicates (\d+)", second.output)
        assert tally, second.output
        # What the first listener committed but may not have acknowledged is redelivered and
        # skipped, like the camera's resend; nothing is stored a second time.
        assert int(tally[1]) == len(readings) - before, second.output
        assert int(tally[2]) >= 1, second.output
    finally:
        first.close()
        if second is not None:
            second.close()
        forget_session(client_id)
