"""``fugong screening purge | health | summary`` on a database file of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from fugong.cli import app
from fugong.core.models import Notification
from fugong.core.schemas import OrganisationCreate, UserCreate
from fugong.core.services import create_organisation, create_user
from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.screening import rules, services
from fugong.screening.models import ScreeningReading
from fugong.screening.schemas import DeviceCreate, ParsedReading, SiteCreate
from fugong.settings import get_settings
from tests.conftest import PASSWORD


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FUGONG_DATABASE_URL", url)
    monkeypatch.setenv("FUGONG_SCREENING_RETENTION_DAYS", "10")
    get_settings.cache_clear()
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    with unit_of_work(factory) as s:
        org = create_organisation(
            s,
            actor=None,
            data=OrganisationCreate(
                kind="institution", institution_type="school", name="命令行测试学校"
            ),
        )
        user = create_user(
            s,
            actor=None,
            data=UserCreate(
                username="clisite",
                display_name="x",
                password=PASSWORD,
                organisation_id=org.id,
                roles=["site"],
            ),
        )
        cdc_org = create_organisation(
            s,
            actor=None,
            data=OrganisationCreate(
                kind="institution", institution_type="cdc", name="疾控", district=None
            ),
        )
        create_user(
            s,
            actor=None,
            data=UserCreate(
                username="clicdc",
                display_name="y",
                password=PASSWORD,
                organisation_id=cdc_org.id,
                roles=["cdc"],
            ),
        )
        site = services.create_site(
            s, data=SiteCreate(code="cli-gate", name="门", kind="factory"), actor=user
        )
        d, _ = services.create_device(
            s, site=site, data=DeviceCreate(code="c1", name="1"), actor=user
        )
        services.ingest(
            s,
            [
                ParsedReading(d.id, f"old{i}", now - timedelta(days=12), 36.5, None, None)
                for i in range(5)
            ]
            + [ParsedReading(d.id, "oldhot", now - timedelta(days=12), 38.5, None, None)]
            + [ParsedReading(d.id, "new", now - timedelta(days=1), 36.5, None, None)],
            source="http",
        )
    yield factory
    engine.dispose()
    get_settings.cache_clear()


def test_purge_uses_the_retention_setting(db: sessionmaker[Session]) -> None:
    result = CliRunner().invoke(app, ["screening", "purge"])
    assert result.exit_code == 0, result.output
    assert "deleted 5 readings older than 10 days" in result.output
    with db() as s:
        assert s.scalar(select(func.count()).select_from(ScreeningReading)) == 2
    result = CliRunner().invoke(app, ["screening", "purge", "--days", "0"])
    assert result.exit_code != 0


def test_health_and_summary(db: sessionmaker[Session]) -> None:
    result = CliRunner().invoke(app, ["screening", "health"])
    assert result.exit_code == 0 and "new device alerts" in result.output
    day = rules.local_day(datetime.now(UTC) - timedelta(days=12)).isoformat()
    result = CliRunner().invoke(app, ["screening", "summary", "--day", day])
    assert result.exit_code == 0 and "sent to 1 CDC users" in result.output
    with db() as s:
        note = s.scalar(select(Notification))
        assert note is not None and "筛查 6 人次" in note.text
    result = CliRunner().invoke(app, ["screening", "summary", "--day", "yesterday"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_mqtt_acl_and_password_line(db: sessionmaker[Session]) -> None:
    result = CliRunner().invoke(app, ["screening", "mqtt-acl", "--listener-user", "lsn"])
    assert result.exit_code == 0, result.output
    assert "user lsn\ntopic read fugong/screening/+/+/readings" in result.output
    assert "user cli-gate/c1\ntopic write fugong/screening/cli-gate/c1/readings" in result.output
    result = CliRunner().invoke(app, ["screening", "mqtt-passwd", "lsn"], input="s3cret-pass\n")
    assert result.exit_code == 0 and result.output.startswith("lsn:$7$101$")
    result = CliRunner().invoke(app, ["screening", "mqtt-passwd", "lsn"], input="\n")
    assert result.exit_code == 2
