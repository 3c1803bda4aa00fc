"""The ``crp-gateway`` command as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crp_gateway.store import migrate
from tests.support import Backend


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECRET_KEY", "DATABASE_URL", "CRP_", "REDIS_URL"))
    }
    environment.update(env or {})
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        "serve",
        "migrate",
        "rotate-secret",
        "audit verify",
        "audit retain",
        "audit rotate-key",
    ],
)
def test_every_command_explains_itself(command: str) -> None:
    result = _run(sys.executable, "-m", "crp_gateway", *command.split(), "--help")
    assert result.returncode == 0
    assert "usage: crp-gateway" in result.stdout
    assert len(result.stdout.splitlines()) > 3


def test_serve_help_names_its_options() -> None:
    result = _run(sys.executable, "-m", "crp_gateway", "serve", "--help")
    for option in ("--host", "--port", "--workers"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "crp_gateway", "serve"],
        [sys.executable, "-m", "uvicorn", "main:app", "--port", "0"],
    ],
)
@pytest.mark.parametrize(
    "secret", ["", "too-short", "replace-with-32-char-random-string"]
)
def test_production_with_a_bad_secret_stops_with_one_line(
    argv: list[str], secret: str, tmp_path: Path
) -> None:
    env = {"CRP_ENV": "production", "CRP_DATA_DIR": str(tmp_path)}
    if secret:
        env["SECRET_KEY"] = secret
    result = _run(*argv, env=env, cwd=Path(__file__).parent.parent)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY" in lines[0]
    assert "Traceback" not in result.stderr
    if secret:
        assert secret not in result.stderr


def test_migrate_brings_a_fresh_store_to_head(fresh_backend: Backend) -> None:
    env = {"CRP_DATA_DIR": fresh_backend.data_dir, "SECRET_KEY": "m" * 40}
    if fresh_backend.database_url:
        env["DATABASE_URL"] = fresh_backend.database_url
    first = _run(sys.executable, "-m", "crp_gateway", "migrate", env=env)
    second = _run(sys.executable, "-m", "crp_gateway", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    head = migrate.head_revision()
    assert first.stdout.strip() == f"schema is at revision {head}"
    assert second.stdout.strip() == f"schema is at revision {head}"
