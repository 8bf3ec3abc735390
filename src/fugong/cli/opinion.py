"""``fugong opinion``."""

from __future__ import annotations

import typer

app = typer.Typer(help="opinion", no_args_is_help=True)
