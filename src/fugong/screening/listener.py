"""The MQTT subscriber behind ``fugong screening listen``.

Topic: ``fugong/screening/<site_code>/<device_code>/readings``, payload: the documented reading
(see :mod:`fugong.screening.schemas`). The payload's ``device`` must be the topic's device, and
that device must exist and be active. On a broker with authentication each camera logs in with
the username ``<site_code>/<device_code>`` and its device token as password, and the broker's
ACL lets it publish only to its own topic; this subscriber then trusts the topic.

No reading is lost:
- MQTT v5 with a persistent session (``clean_start=False`` and a session expiry), QoS 1: while
  the subscriber is away, the broker queues its readings, and a broker with ``persistence true``
  keeps that queue across its own restart;
- messages are acknowledged only after the batch that stored them has committed
  (``manual_ack``): a crash before the commit means the broker sends them again, and the unique
  (device, event id) turns a redelivery into a no-op;
- paho reconnects by itself after the connection drops.

Throughput: messages are gathered for at most ``batch_ms`` (or ``batch_max`` messages) and
stored in one transaction. ``batch_max=1`` stores each reading in its own transaction (the
benchmark's named alternative).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fugong.db import unit_of_work
from fugong.errors import FieldError, ValidationFailed
from fugong.screening import queries, services
from fugong.screening.schemas import ParsedReading, parse_reading

log = logging.getLogger("fugong.screening.listener")
TOPIC = "fugong/screening/+/+/readings"
#: Readings the broker may send before we acknowledge; covers a full batch at bench rates.
RECEIVE_MAXIMUM = 5000
#: A week: the broker keeps the session (and queues readings) through a long outage.
SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass
class ListenerStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    alarms: int = 0
    batches: int = 0
    connects: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Msg:
    mid: int
    qos: int
    topic: str
    payload: bytes


class Listener:
    """Subscribe, batch, store, acknowledge. ``run(stop)`` blocks until ``stop`` is set."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        client_id: str = "fugong-screening-listener",
        username: str | None = None,
        password: str | None = None,
        batch_ms: int = 100,
        batch_max: int = 500,
        health_every_s: float = 60.0,
    ) -> None:
        self.factory = session_factory
        self.host, self.port = host, port
        self.client_id = client_id
        self.username, self.password = username, password
        self.batch_s = max(batch_ms, 1) / 1000
        self.batch_max = max(batch_max, 1)
        self.health_every_s = health_every_s
        self.stats = ListenerStats()
        self.connected = threading.Event()
        self._buf: deque[_Msg] = deque()
        self._cond = threading.Condition()
        self._devices: dict[tuple[str, str], tuple[int, bool]] = {}
        self._devices_loaded = 0.0
        self._client: Any = None

    # -- MQTT callbacks (paho's network thread) --

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self.stats.connects += 1
        client.subscribe(TOPIC, qos=1)
        self.connected.set()
        log.info("connected to %s:%s, subscribed to %s", self.host, self.port, TOPIC)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected (%s); paho reconnects", reason)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._cond:
            self._buf.append(_Msg(msg.mid, msg.qos, msg.topic, msg.payload))
            if len(self._buf) >= self.batch_max:
                self._cond.notify()

    # -- the loop --

    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        client.connect_async(
            self.host, self.port, keepalive=10, clean_start=False, properties=props
        )
        client.loop_start()
        return client

    def run(self, stop: threading.Event) -> None:
        self._client = self._connect()
        last_health = time.monotonic()
        try:
            while not stop.is_set():
                with self._cond:
                    if len(self._buf) < self.batch_max:
                        self._cond.wait(timeout=self.batch_s)
                    batch = [
                        self._buf.popleft() for _ in range(min(len(self._buf), self.batch_max))
                    ]
                if batch:
                    self._store_until_done(batch, stop)
                if time.monotonic() - last_health >= self.health_every_s:
                    last_health = time.monotonic()
                    self._health()
        finally:
            self._client.loop_stop()
            self._client.disconnect()

    def _store_until_done(self, batch: list[_Msg], stop: threading.Event) -> None:
        """Store a batch, retrying while the database is unavailable; ack only after commit.
        On ``stop`` an unstored batch stays unacknowledged, so the broker sends it again."""
        delay = 0.2
        while True:
            try:
                self._store(batch)
            except Exception as e:  # the database is down or locked: keep the readings
                self.stats.errors.append(f"{type(e).__name__}: {e}"[:300])
                log.exception("storing a batch of %d failed; retrying", len(batch))
                if stop.wait(delay):
                    return
                delay = min(delay * 2, 5.0)
                continue
            for m in batch:
                if m.qos:
                    self._client.ack(m.mid, m.qos)
            return

    def _device(self, site: str, device: str) -> tuple[int, bool] | None:
        key = (site, device)
        found = self._devices.get(key)
        # A new camera is picked up without a restart; misses reload at most once a second.
        if found is None and time.monotonic() - self._devices_loaded > 1.0:
            with self.factory() as session:
                self._devices = queries.device_codes(session)
            self._devices_loaded = time.monotonic()
            found = self._devices.get(key)
        return found

    def _store(self, batch: list[_Msg]) -> None:
        now = datetime.now(UTC)
        parsed: list[ParsedReading] = []
        rejected = 0
        for m in batch:
            try:
                parsed.append(self._parse(m, now))
            except ValidationFailed as e:
                rejected += 1
                log.warning("reading refused on %s: %s", m.topic, e.message)
        with unit_of_work(self.factory) as session:
            result = services.ingest(session, parsed, source="mqtt", now=now)
        self.stats.received += len(batch)
        self.stats.rejected += rejected + result.unknown_device
        self.stats.stored += result.accepted
        self.stats.duplicates += result.duplicates
        self.stats.alarms += result.alarms
        self.stats.batches += 1

    def _parse(self, m: _Msg, now: datetime) -> ParsedReading:
        parts = m.topic.split("/")
        if len(parts) != 5:
            raise ValidationFailed(
                [FieldError("topic", "主题格式应为 fugong/screening/<测温点>/<设备>/readings")]
            )
        device = self._device(parts[2], parts[3])
        if device is None or not device[1]:
            raise ValidationFailed(
                [FieldError("topic", f"设备 {parts[2]}/{parts[3]} 不存在或已停用")]
            )
        try:
            payload = json.loads(m.payload)
        except (ValueError, UnicodeDecodeError):
            raise ValidationFailed([FieldError("(整体)", "不是合法的 JSON")]) from None
        reading, dropped = parse_reading(payload)
        return services.bind_reading(
            reading, (device[0], parts[3]), images_dropped=dropped, now=now
        )

    def _health(self) -> None:
        try:
            with unit_of_work(self.factory) as session:
                new = services.check_devices(session)
            for a in new:
                log.warning("device alert %s on device %s: %s", a.kind, a.device_id, a.detail)
        except Exception:  # health checks must never stop the ingest
            log.exception("device health check failed")
