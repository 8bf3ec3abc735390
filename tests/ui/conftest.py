"""A real server on a real SQLite file, driven by Debian's Chromium through Playwright.

Chromium comes from the system (``FUGONG_CHROMIUM`` or /usr/bin/chromium): Playwright's own
browser download is never used, since deployments and CI have no internet."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from fugong.core.demo import DEMO_PASSWORD, load_demo
from fugong.core.models import Enterprise, Organisation
from fugong.core.schemas import UserCreate
from fugong.core.services import create_user
from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.opinion.demo import load_opinion_demo
from fugong.policies.demo import load_policies_demo
from fugong.screening.demo import load_screening_demo
from fugong.settings import Settings
from fugong.supplies.demo import load_supplies_demo
from fugong.web.app import create_app
from tests.conftest import need_service

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("FUGONG_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


LIVE_DB_URL = ""


def portfolio_of_42(session: Any) -> None:
    """The article's account manager surveyed 42 enterprises: give one manager exactly that."""
    desk_org = session.scalar(select(Organisation).where(Organisation.name.like("%服务专班")))
    caller = create_user(
        session,
        actor=None,
        data=UserCreate(
            username="caller42",
            display_name="雷华美",
            password=DEMO_PASSWORD,
            organisation_id=desk_org.id,
            roles=["manager"],
        ),
    )
    ids = session.scalars(select(Enterprise.id).order_by(Enterprise.id).limit(42)).all()
    for ent in session.scalars(select(Enterprise).where(Enterprise.id.in_(ids))):
        ent.manager_id = caller.id
    session.flush()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("live")
    settings = Settings(
        secret_key="u" * 40,
        database_url=f"sqlite:///{data / 'ui.db'}",
        data_dir=data,
        login_max_failures=50,
    )
    global LIVE_DB_URL
    LIVE_DB_URL = settings.database_url
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        load_demo(session, enterprises=120, seed=7)
        load_supplies_demo(session)
        load_policies_demo(session)
        load_opinion_demo(session)
        load_screening_demo(session)
        portfolio_of_42(session)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    exe = chromium_path()
    if exe is None:
        need_service("Chromium", "no chromium binary (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    ctx = browser.new_context(
        base_url=live_server, locale="zh-CN", viewport={"width": 390, "height": 844}
    )  # a phone screen
    p = ctx.new_page()
    p.set_default_timeout(10_000)
    yield p
    ctx.close()


def login(page: Any, username: str, password: str = "fugong-demo-2020") -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
