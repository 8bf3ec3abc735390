"""The ``fugong`` command: the same services as the web, from a shell. One module per domain.

The domain sub-commands are imported when they are used, not on every start: together they pull
in numpy, scipy, DuckDB, jieba and the rest, which would make ``fugong --help`` and every cron
job (``fugong screening purge``) pay for all of them.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from fugong.cli import core

# name -> (module whose ``app`` it is, the help line shown in ``fugong --help``)
DOMAINS: dict[str, tuple[str, str]] = {
    "supplies": ("fugong.cli.supplies", "应急物资 / emergency supplies"),
    "policies": ("fugong.cli.policies", "惠企政策 / relief measures"),
    "tracing": ("fugong.cli.tracing", "轨迹追踪 / tracing"),
    "opinion": ("fugong.cli.opinion", "舆情监测 / public-opinion monitoring"),
    "screening": ("fugong.cli.screening", "测温通道 / thermal screening gates"),
}


_COMPLETION = {"install_completion", "show_completion"}


def load(name: str) -> Any:
    """The click command of one domain's Typer app (importing its module)."""
    module = importlib.import_module(DOMAINS[name][0])
    command = typer.main.get_command(module.app)
    # Built on its own, the app looks like a root and gets the shell-completion options; those
    # belong to ``fugong`` itself.
    command.params = [p for p in command.params if p.name not in _COMPLETION]
    return command


class _Deferred(TyperGroup):
    """Stands in for a domain's sub-command in the root listing; the first parse loads the real
    one, which then handles the arguments (and its own ``--help``)."""

    def __init__(self, name: str, help_line: str) -> None:
        super().__init__(name=name, help=help_line, short_help=help_line)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return load(self.name or "").make_context(info_name, args, parent=parent, **extra)


class _Root(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in DOMAINS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in DOMAINS:
            return _Deferred(cmd_name, DOMAINS[cmd_name][1])
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_Root,
    help="复工 Fugong：企业复工复产服务平台",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
core.register(app)


def main() -> None:
    app()


__all__ = ["DOMAINS", "app", "main"]
