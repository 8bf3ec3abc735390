"""The root ``fugong`` command lists every domain but imports a domain only when it is used."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from fugong.cli import DOMAINS, app

HEAVY = ("numpy", "scipy", "duckdb", "pyarrow", "jieba", "weasyprint", "paho")

PROBE = """
import sys
from typer.testing import CliRunner
from fugong.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
assert result.exit_code == 0, result.output
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded(*args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_help_lists_every_domain_without_importing_them() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name, (_module, help_line) in DOMAINS.items():
        assert name in result.output and help_line in result.output
    assert _loaded("--help") == set()


def test_a_domain_is_loaded_when_used_and_keeps_its_own_help() -> None:
    result = CliRunner().invoke(app, ["supplies", "--help"])
    assert result.exit_code == 0
    assert "allocate" in result.output and "--install-completion" not in result.output
    # Using one domain loads what it needs, not the others' libraries.
    assert "jieba" not in _loaded("screening", "--help")
    assert CliRunner().invoke(app, ["nosuch"]).exit_code == 2
