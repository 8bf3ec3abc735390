"""``fugong screening listen`` as it runs in production: the real command in a child process,
subscribed to the system Mosquitto (127.0.0.1:1883, or ``FUGONG_TEST_MQTT_PORT``), storing into
SQLite and PostgreSQL. Readings published with QoS 1 are stored, the fever raises its alarm, and
SIGTERM stops the listener cleanly with its tally.

The listener commits from its own process, so each run gets a database of its own (a SQLite file,
a PostgreSQL schema) instead of the rolled-back test transaction. Its site code is unique, since
other listeners and benchmarks may share the broker; its persistent session is ended afterwards
so the broker does not keep queueing readings for it. Without a broker the test is skipped
loudly, and fails under CI=true."""

from __future__ import annotations

import json
import os
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
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from fugong.db import make_engine, make_session_factory, migrate
from fugong.screening.models import ScreeningAlarm, ScreeningReading
from tests.conftest import PG_URL, need_service
from tests.integration.screening_sites import school_gate

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
PORT = int(os.environ.get("FUGONG_TEST_MQTT_PORT", "1883"))
READINGS = [("n1", 36.4), ("n2", 36.6), ("hot", 38.5), ("n3", 36.5), ("n4", 36.7)]


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
    schema = f"fugong_listen_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:  # any driver error means "no usable server"
        admin.dispose()
        need_service("PostgreSQL", f"{PG_URL}: {type(e).__name__}: {str(e).splitlines()[0]}")
    url = (
        make_url(PG_URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


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

    def __init__(self, url: str, client_id: str) -> None:
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fugong.cli import main; main()",
                "screening",
                "listen",
                "--host",
                HOST,
                "--port",
                str(PORT),
                "--client-id",
                client_id,
                "--batch-ms",
                "50",
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


def wait_until_routed(child: Child, site: str, timeout: float = 20) -> None:
    """Wait until the broker routes this site's topic to the listener: "subscribed" in its log
    only says the SUBSCRIBE left, so probe with a reading from an unregistered camera, which
    the listener refuses with a log line naming the topic."""
    topic = f"fugong/screening/{site}/probe/readings"
    c = _client(f"listen-probe-{uuid.uuid4().hex[:8]}")
    deadline = time.monotonic() + timeout
    try:
        while f"refused on {topic}" not in child.output:
            assert time.monotonic() < deadline, f"no probe reached the listener:\n{child.output}"
            c.publish(topic, b"{}", qos=0)
            time.sleep(0.2)
    finally:
        c.loop_stop()
        c.disconnect()


def publish(site: str) -> None:
    """The camera's readings, QoS 1: each is acknowledged by the broker before this returns."""
    c = _client(f"listen-cam-{uuid.uuid4().hex[:8]}")
    at = datetime.now(UTC) - timedelta(seconds=1)
    infos = [
        c.publish(
            f"fugong/screening/{site}/cam-1/readings",
            json.dumps(
                {
                    "device": "cam-1",
                    "event_id": event,
                    "time": (at + timedelta(milliseconds=i)).isoformat(),
                    "temperature": temp,
                }
            ),
            qos=1,
        )
        for i, (event, temp) in enumerate(READINGS)
    ]
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
