"""``fugong screening``: the MQTT listener, retention, device health and the CDC's daily
summary. Uses ``FUGONG_DATABASE_URL`` and the ``FUGONG_SCREENING_*`` settings."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date, timedelta
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from fugong.core import audit
from fugong.db import make_engine, make_session_factory, unit_of_work
from fugong.settings import get_settings

app = typer.Typer(help="测温通道 / thermal screening gates", no_args_is_help=True)


def _factory() -> sessionmaker[Session]:
    return make_session_factory(make_engine(get_settings().database_url))


@app.command()
def listen(
    host: Annotated[str | None, typer.Option(help="MQTT broker host")] = None,
    port: Annotated[int | None, typer.Option(help="MQTT broker port")] = None,
    client_id: Annotated[str, typer.Option(help="MQTT client id (the persistent session)")] = (
        "fugong-screening-listener"
    ),
    batch_ms: Annotated[int, typer.Option(min=1, help="longest wait before a batch is stored")] = (
        100
    ),
    batch_max: Annotated[
        int, typer.Option(min=1, help="readings per transaction (1 = no batching)")
    ] = 500,
    health_every: Annotated[float, typer.Option(help="seconds between device health checks")] = (
        60.0
    ),
) -> None:
    """Subscribe to fugong/screening/+/+/readings and store readings until SIGINT/SIGTERM."""
    from fugong.screening.listener import Listener

    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    listener = Listener(
        _factory(),
        host=host or settings.screening_mqtt_host,
        port=port or settings.screening_mqtt_port,
        client_id=client_id,
        username=settings.screening_mqtt_username or None,
        password=settings.screening_mqtt_password or None,
        batch_ms=batch_ms,
        batch_max=batch_max,
        health_every_s=health_every,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(f"listening on {listener.host}:{listener.port} as {client_id}", err=True)
    # The listener is unattended work like the HTTP push: what it writes with no user (alarms
    # from camera readings) is ``system``, not the operator who started it.
    audit.default_actor.set(audit.SYSTEM_LABEL)
    listener.run(stop)
    s = listener.stats
    typer.echo(
        f"stopped: received {s.received}, stored {s.stored}, duplicates {s.duplicates}, "
        f"refused {s.rejected}, alarms {s.alarms}",
        err=True,
    )


@app.command()
def purge(
    days: Annotated[
        int | None, typer.Option(min=1, help="keep this many days (default: the setting)")
    ] = None,
) -> None:
    """Delete non-alarm readings older than the retention (FUGONG_SCREENING_RETENTION_DAYS)."""
    from fugong.screening.services import purge as do_purge

    keep = days or get_settings().screening_retention_days
    with unit_of_work(_factory()) as session:
        count = do_purge(session, retention_days=keep)
    typer.echo(f"deleted {count} readings older than {keep} days")


@app.command()
def health() -> None:
    """Raise device alerts now: silent devices during opening hours, drifting devices."""
    from fugong.screening.services import check_devices

    with unit_of_work(_factory()) as session:
        alerts = check_devices(session)
        lines = [f"{a.device.site_id}/{a.device.code} {a.kind}: {a.detail}" for a in alerts]
    for line in lines:
        typer.echo(line)
    typer.echo(f"{len(lines)} new device alerts")


@app.command()
def summary(
    day: Annotated[
        str | None, typer.Option(help="local day YYYY-MM-DD (default: yesterday)")
    ] = None,
) -> None:
    """Send the day's summary to every CDC user (in-app notification + outbound channel)."""
    from fugong.screening.queries import today
    from fugong.screening.services import send_cdc_summary

    try:
        d = date.fromisoformat(day) if day else today() - timedelta(days=1)
    except ValueError as e:
        typer.secho(f"错误：--day {day}: 应为 YYYY-MM-DD", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from e
    with unit_of_work(_factory()) as session:
        n = send_cdc_summary(session, day=d)
    typer.echo(f"{d.isoformat()}: summary sent to {n} CDC users")


@app.command("mqtt-acl")
def mqtt_acl(
    listener_user: Annotated[
        str, typer.Option(help="the listener's MQTT username (FUGONG_SCREENING_MQTT_USERNAME)")
    ] = "",
) -> None:
    """Print Mosquitto's acl_file: each active camera writes only its own topic."""
    from fugong.screening.queries import mosquitto_acl

    user = listener_user or get_settings().screening_mqtt_username or "fugong-listener"
    with unit_of_work(_factory()) as session:
        typer.echo(mosquitto_acl(session, listener_user=user))


@app.command("mqtt-passwd")
def mqtt_passwd(
    username: Annotated[str, typer.Argument(help="MQTT username, e.g. fugong-listener")],
) -> None:
    """Print a Mosquitto password_file line for USERNAME; the password is read from stdin."""
    import sys

    from fugong.screening.services import mosquitto_password_line

    secret = sys.stdin.readline().rstrip("\n")
    if not secret:
        typer.secho("错误：请从标准输入提供密码", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    typer.echo(mosquitto_password_line(username, secret))
