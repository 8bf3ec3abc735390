"""The ``fugong`` command: the same services as the web, from a shell. One module per domain."""

from __future__ import annotations

import typer

from fugong.cli import core, opinion, policies, screening, supplies, tracing

app = typer.Typer(
    help="复工 Fugong：企业复工复产服务平台", no_args_is_help=True, pretty_exceptions_enable=False
)
core.register(app)
app.add_typer(supplies.app, name="supplies")
app.add_typer(policies.app, name="policies")
app.add_typer(tracing.app, name="tracing")
app.add_typer(opinion.app, name="opinion")
app.add_typer(screening.app, name="screening")


def main() -> None:
    app()


__all__ = ["app", "main"]
