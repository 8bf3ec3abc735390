"""Core commands: serve, db, demo, users, tokens, enterprises."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import func, select

from fugong.core import audit, notify, services
from fugong.core.demo import DEMO_PASSWORD, load_demo
from fugong.core.models import Organisation, User
from fugong.core.reference import ROLES
from fugong.core.schemas import UserCreate
from fugong.core.tabular import read_table
from fugong.db import make_engine, make_session_factory, migrate, unit_of_work
from fugong.errors import FugongError, ValidationFailed
from fugong.settings import Settings, get_settings

db_app = typer.Typer(help="数据库迁移 / database migrations", no_args_is_help=True)
users_app = typer.Typer(help="用户 / users", no_args_is_help=True)
tokens_app = typer.Typer(help="API 令牌 / API tokens", no_args_is_help=True)
enterprises_app = typer.Typer(help="企业名录 / enterprise registry", no_args_is_help=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"错误：{message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _factory(settings: Settings):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(settings.database_url))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = get_settings()
    migrate.upgrade(make_engine(settings.database_url), revision)
    typer.echo(f"数据库已升级到 {revision}：{_safe_url(settings.database_url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the applied migration revision."""
    typer.echo(migrate.current(make_engine(get_settings().database_url)) or "(空库)")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def print_logins(settings: Settings) -> None:
    typer.echo(f"\n  打开 http://{settings.host}:{settings.port}/  （API 文档：/docs）\n")
    typer.echo(f"  演示账号（密码均为 {DEMO_PASSWORD}）：")
    for role in ROLES:
        typer.echo(f"    {ROLES[role]:<10}  {role}")
    typer.echo("")


@enterprises_app.command("import")
def enterprises_import(file: Path) -> None:
    """Import enterprises from CSV or XLSX: all rows are checked first; one bad row, none in."""
    settings = get_settings()
    if not file.exists():
        raise fail(f"文件不存在：{file}")
    try:
        rows = read_table(file.read_bytes(), file.name)
        with unit_of_work(_factory(settings)) as session:
            report = services.import_enterprises(session, rows=rows, actor=None)
            if report.errors:
                raise ValidationFailed(report.errors)
    except ValidationFailed as e:
        for err in e.errors:
            typer.echo(f"  {err}", err=True)
        raise fail(f"{len(e.errors)} 处错误，未导入任何数据") from None
    migrate.analyze(make_engine(settings.database_url))
    typer.echo(f"已导入 {report.created} 家企业")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[list[str], typer.Option("--role", "-r", help="可重复：" + ", ".join(ROLES))],
    organisation: Annotated[str, typer.Option("--org", help="机构名称或统一社会信用代码")],
    display_name: Annotated[str | None, typer.Option("--name")] = None,
    password: Annotated[str | None, typer.Option(help="省略时从终端读取")] = None,
) -> None:
    """Create a user in an existing organisation."""
    settings = get_settings()
    if password is None:
        password = typer.prompt("密码", hide_input=True, confirmation_prompt=True)
    try:
        with unit_of_work(_factory(settings)) as session:
            org = session.scalar(
                select(Organisation).where(
                    (Organisation.name == organisation) | (Organisation.uscc == organisation)
                )
            )
            if org is None:
                raise fail(f"机构不存在：{organisation}")
            user = services.create_user(
                session,
                actor=None,
                data=UserCreate(
                    username=username,
                    display_name=display_name or username,
                    password=password,
                    organisation_id=org.id,
                    roles=role,
                ),
            )
            typer.echo(f"已创建用户 {user.username}（{', '.join(sorted(user.roles))}）")
    except FugongError as e:
        raise fail(e.message) from None
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise fail(str(e)) from None


@tokens_app.command("create")
def tokens_create(username: str, name: str, days: int = 365) -> None:
    """Make an API token for USERNAME; it is printed once and only its hash is kept."""
    with unit_of_work(_factory(get_settings())) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise fail(f"用户不存在：{username}")
        token, _ = services.create_api_token(
            session, user=user, name=name, actor=None, days=days or None
        )
    typer.echo(token)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def register(app: typer.Typer) -> None:
    @app.callback()
    def _from_the_shell(ctx: typer.Context) -> None:
        # Every command, the domains' included: rows written with no user name ``cli``, so the
        # trail tells an operator's import or purge from unattended work. Undone when the
        # command ends, for a process that goes on (a test run invoking several commands).
        token = audit.default_actor.set(audit.CLI_LABEL)
        ctx.call_on_close(lambda: audit.default_actor.reset(token))
        # Commands notify too (opinion alerts, the weekly report, screening summaries): they
        # must reach the deployment's gateway, not only the log, as the web app's do.
        notify.configure(get_settings().outbound)

    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(enterprises_app, name="enterprises")

    @app.command()
    def serve(
        host: Annotated[str | None, typer.Option()] = None,
        port: Annotated[int | None, typer.Option()] = None,
        workers: int = 1,
        access_log: Annotated[
            bool, typer.Option("--access-log/--no-access-log", help="log every request")
        ] = False,
    ) -> None:
        """Run the web server."""
        import uvicorn

        # Off by default: a log line per request is work on the request path, and the audit
        # log already records every write and every read of personal data.
        log_level = "info" if access_log else "warning"

        settings = get_settings()
        if host:
            settings.host = host
        if port:
            settings.port = port
        try:
            settings.resolved_secret()
        except FugongError as e:
            raise fail(e.message) from None
        if settings.demo:
            print_logins(settings)
        else:
            typer.echo(f"http://{settings.host}:{settings.port}/")
        # From here on this process is the server: what it writes with no user (failed
        # logins, camera pushes) is unattended work, ``system``, as in separate workers.
        audit.default_actor.set(audit.SYSTEM_LABEL)
        if workers > 1:
            # Workers share a socket we open ourselves: uvicorn's own multi-worker socket is
            # created without the TCP protocol number, so asyncio never sets TCP_NODELAY on its
            # connections and every response waits ~40 ms for a delayed ACK (bench/web.py).
            # Accepted sockets inherit TCP_NODELAY from the listening one on Linux.
            sock = _listening_socket(settings.host, settings.port)
            uvicorn.run(
                "fugong.web.asgi:app",
                fd=sock.fileno(),
                workers=workers,
                access_log=access_log,
                log_level=log_level,
            )
        else:
            from fugong.web.app import create_app

            uvicorn.run(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                access_log=access_log,
                log_level=log_level,
            )

    @app.command()
    def demo(
        enterprises: int = 2000,
        seed: int = 2020,
        serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = False,
    ) -> None:
        """Migrate the database and load a synthetic Huangpu district (first run only)."""
        # The domains' demos pull in numpy, jieba and the like: imported here, not on every
        # start of the command (``fugong --help`` included).
        from fugong.opinion.demo import load_opinion_demo
        from fugong.policies.demo import load_policies_demo
        from fugong.screening.demo import load_screening_demo
        from fugong.supplies.demo import load_supplies_demo

        settings = get_settings()
        if not settings.demo:
            raise fail("演示数据只在演示模式下载入：请设置 FUGONG_DEMO=1")
        engine = make_engine(settings.database_url)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        with unit_of_work(factory) as session:
            if session.scalar(select(func.count()).select_from(User)):
                typer.echo("演示数据已存在，跳过载入。", err=True)
            else:
                typer.echo(f"正在生成 {enterprises} 家企业的演示数据……", err=True)
                load_demo(session, enterprises=enterprises, seed=seed)
                load_supplies_demo(session)
                load_policies_demo(session)
                load_opinion_demo(session)
                load_screening_demo(session)
        migrate.analyze(engine)
        if serve_after:
            serve(None, None, 1)
        else:
            print_logins(settings)
            sys.stdout.flush()
