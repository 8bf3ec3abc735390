"""The MQTT subscriber against a real Mosquitto: readings arrive, duplicates are ignored, and
neither a broker restart nor a listener outage loses a reading.

The test runs its own broker (``mosquitto -p PORT``, persistence on, in a temp directory) so it
can kill and restart it without touching the system broker; the listener stores into a SQLite
file of its own, since it commits from its own thread."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.screening import services
from fugong.screening.listener import Listener
from fugong.screening.models import ScreeningAlarm, ScreeningDevice, ScreeningReading
from fugong.screening.schemas import DeviceCreate
from tests.conftest import need_service
from tests.integration.screening_sites import school_gate

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, workdir: Path, extra: str = "allow_anonymous true\n") -> None:
        self.port = _free_port()
        self.dir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n{extra}persistence true\n"
            f"persistence_location {workdir}/\nautosave_interval 1\n"
            # Started as root, mosquitto drops to the ``mosquitto`` user, which cannot write
            # the persistence file under pytest's private temp directory; stay who we are.
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        # SIGTERM: mosquitto writes its persistence file (sessions, queued QoS 1) on the way out.
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        need_service("Mosquitto", "no mosquitto binary (apt-get install mosquitto)")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'mqtt.db'}")
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    school_gate(factory, school="MQTT 测试小学", nurse="mqttnurse", site="mq-school")
    yield factory
    engine.dispose()


class Running:
    def __init__(self, factory: sessionmaker[Session], port: int) -> None:
        self.stop = threading.Event()
        self.listener = Listener(factory, port=port, client_id="fugong-test-listener", batch_ms=50)
        self.thread = threading.Thread(target=self.listener.run, args=(self.stop,), daemon=True)
        self.thread.start()
        assert self.listener.connected.wait(10), "listener did not connect"

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def publisher(port: int) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{port}-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish(port: int, events: list[tuple[str, float]], topic_device: str = "cam-1") -> None:
    c = publisher(port)
    now = datetime.now(UTC) - timedelta(seconds=1)
    infos = [
        c.publish(
            f"fugong/screening/mq-school/{topic_device}/readings",
            json.dumps(
                {
                    "device": "cam-1",
                    "event_id": e,
                    "time": now.isoformat(),
                    "temperature": t,
                    "snapshot": "jpeg-bytes",
                }
            ),
            qos=1,
        )
        for e, t in events
    ]
    for i in infos:
        i.wait_for_publish(timeout=10)
    c.loop_stop()
    c.disconnect()


def count(factory: sessionmaker[Session], model: Any = ScreeningReading) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def wait_for(factory: sessionmaker[Session], n: int, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    got = count(factory)
    while got < n and time.monotonic() < deadline:
        time.sleep(0.1)
        got = count(factory)
    return got


def test_readings_arrive_and_duplicates_are_ignored(
    broker: Broker, db: sessionmaker[Session]
) -> None:
    run = Running(db, broker.port)
    try:
        publish(broker.port, [(f"e{i}", 36.5) for i in range(20)] + [("hot", 38.2)])
        assert wait_for(db, 21) == 21
        publish(broker.port, [("e3", 36.5), ("hot", 38.2), ("e21", 36.4)])
        assert wait_for(db, 22) == 22
        time.sleep(0.5)
        assert count(db) == 22
        assert count(db, ScreeningAlarm) == 1
        # a reading whose payload names another device than its topic is refused
        publish(broker.port, [("x", 36.5)], topic_device="cam-9")
        time.sleep(0.5)
        assert count(db) == 22
        with db() as s:
            dev = s.scalar(select(ScreeningDevice))
            # every message's image was dropped, the duplicates' too
            assert dev is not None and dev.images_dropped == 24
    finally:
        run.halt()
    assert run.listener.stats.duplicates == 2


def test_no_reading_lost_across_broker_restart_and_listener_outage(
    broker: Broker, db: sessionmaker[Session]
) -> None:
    run = Running(db, broker.port)
    publish(broker.port, [(f"a{i}", 36.4) for i in range(30)])
    assert wait_for(db, 30) == 30
    # 1. the broker goes away and comes back: the listener reconnects by itself
    broker.stop()
    time.sleep(0.5)
    broker.start()
    assert run.listener.connected.wait(15), "listener did not reconnect"
    publish(broker.port, [(f"b{i}", 36.4) for i in range(30)])
    assert wait_for(db, 60) == 60
    # 2. the listener is down while readings arrive, and the broker restarts meanwhile:
    #    the persistent session and the broker's persistence keep them queued
    run.halt()
    publish(broker.port, [(f"c{i}", 36.4) for i in range(30)] + [("c-hot", 38.9)])
    broker.stop()
    broker.start()
    run = Running(db, broker.port)
    try:
        assert wait_for(db, 91) == 91
        with db() as s:
            events = set(s.scalars(select(ScreeningReading.event_id)))
        expected = {f"{p}{i}" for p in "abc" for i in range(30)} | {"c-hot"}
        assert events == expected
        assert count(db, ScreeningAlarm) == 1
    finally:
        run.halt()


def test_per_device_credentials_and_acl(tmp_path: Path, db: sessionmaker[Session]) -> None:
    """A broker with authentication: each camera logs in with its own token and may write only
    its own topic; the listener reads with its own login."""
    if shutil.which("mosquitto") is None:
        need_service("Mosquitto", "no mosquitto binary (apt-get install mosquitto)")
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    with unit_of_work(db) as s:
        from fugong.core.models import User
        from fugong.screening.models import ScreeningSite
        from fugong.screening.queries import mosquitto_acl

        site = s.scalar(select(ScreeningSite))
        nurse = s.scalar(select(User).where(User.username == "mqttnurse"))
        assert site is not None and nurse is not None
        _, token2 = services.create_device(
            s, site=site, data=DeviceCreate(code="cam-2", name="2"), actor=nurse
        )
        acl = mosquitto_acl(s, listener_user="listener")
    (tmp_path / "acl").write_text(acl)
    (tmp_path / "passwd").write_text(
        services.mosquitto_password_line("listener", "listener-secret")
        + "\n"
        + services.mosquitto_password_line("mq-school/cam-2", token2)
        + "\n"
    )
    for f in ("acl", "passwd"):
        (tmp_path / f).chmod(0o600)
    broker = Broker(
        tmp_path,
        f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\n"
        f"acl_file {tmp_path / 'acl'}\n",
    )
    broker.start()
    stop = threading.Event()
    listener = Listener(
        db, port=broker.port, client_id="auth-listener", username="listener",
        password="listener-secret", batch_ms=50,
    )  # fmt: skip
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert listener.connected.wait(10)

        def send(user: str, password: str, topic_device: str, event: str) -> Any:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cam-{event}")
            c.username_pw_set(user, password)
            c.connect("127.0.0.1", broker.port)
            c.loop_start()
            body = {"device": topic_device, "event_id": event,
                    "time": datetime.now(UTC).isoformat(), "temperature": 36.5}  # fmt: skip
            info = c.publish(
                f"fugong/screening/mq-school/{topic_device}/readings", json.dumps(body), qos=1
            )
            info.wait_for_publish(timeout=5)
            c.loop_stop()
            c.disconnect()
            return c

        send("mq-school/cam-2", token2, "cam-2", "ok-1")
        assert wait_for(db, 1) == 1
        # cam-2 may not write cam-1's topic: the broker drops it
        send("mq-school/cam-2", token2, "cam-1", "spoof-1")
        # a wrong token is refused at connect
        outcomes: list[bool] = []
        bad = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bad-cam")
        bad.username_pw_set("mq-school/cam-2", "fgd_wrong")
        bad.on_connect = lambda _c, _u, _f, rc, _p: outcomes.append(rc.is_failure)
        bad.connect("127.0.0.1", broker.port)
        bad.loop_start()
        deadline = time.monotonic() + 5
        while not outcomes and time.monotonic() < deadline:
            time.sleep(0.05)
        bad.loop_stop()
        assert outcomes[:1] == [True]
        time.sleep(0.5)
        with db() as s:
            assert set(s.scalars(select(ScreeningReading.event_id))) == {"ok-1"}
    finally:
        stop.set()
        thread.join(timeout=10)
        broker.stop()
