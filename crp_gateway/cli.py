"""The ``crp-gateway`` command: serve, migrate, rotate-secret.

Each command is a thin wrapper over a plain function. Configuration comes from
the environment (see ``settings.py``); a bad configuration prints one line and
exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from crp_gateway import __version__
from crp_gateway.logging import configure_logging
from crp_gateway.settings import ConfigError, Settings, load_settings


def _fail(message: str, status: int = 2) -> int:
    print(f"crp-gateway: {message}", file=sys.stderr)  # noqa: T201
    return status


def _out(message: str) -> None:
    print(message)  # noqa: T201


def serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    host = args.host or os.environ.get("HOST") or settings.host
    port = args.port or settings.port
    uvicorn.run(
        "crp_gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return 0


async def _migrate(settings: Settings) -> str | None:
    from crp_gateway.store import migrate
    from crp_gateway.store.database import create_engine

    engine = create_engine(settings.store_url)
    try:
        await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


def migrate_command(settings: Settings, _args: argparse.Namespace) -> int:
    revision = asyncio.run(_migrate(settings))
    _out(f"schema is at revision {revision}")
    return 0


async def _rotate(settings: Settings) -> int:
    from crp_gateway.runtime import build_vault
    from crp_gateway.services.rotation import rotate_secret
    from crp_gateway.store.database import create_engine, create_sessionmaker

    engine = create_engine(settings.store_url)
    try:
        report = await rotate_secret(create_sessionmaker(engine), build_vault(settings))
    finally:
        await engine.dispose()
    _out(
        f"re-wrapped {report.rewrapped}, already current {report.already_current}, "
        f"unreadable {len(report.unreadable)}"
    )
    for label in report.unreadable:
        _out(f"unreadable under SECRET_KEY and SECRET_KEY_PREVIOUS: {label}")
    return 1 if report.unreadable else 0


def rotate_secret_command(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.secret_key_previous is None:
        return _fail(
            "set SECRET_KEY to the new secret and SECRET_KEY_PREVIOUS to the old one"
        )
    return asyncio.run(_rotate(settings))


async def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from crp_gateway.audit.chain import ChainStatus
    from crp_gateway.audit.recorder import TenantKeys
    from crp_gateway.audit.verify import verify_store
    from crp_gateway.runtime import build_vault
    from crp_gateway.store.database import create_engine, create_sessionmaker

    engine = create_engine(settings.store_url)
    try:
        sessions = create_sessionmaker(engine)
        results = await verify_store(
            sessions,
            TenantKeys(sessions, build_vault(settings)),
            tenant_id=args.tenant,
            session_id=args.session,
        )
    finally:
        await engine.dispose()
    broken = 0
    for tenant, result in results:
        line = f"{tenant} {result.session_id} {result.status.value}"
        if result.status is ChainStatus.BROKEN:
            broken += 1
            parts = ("windows", "events", "tenant_chain", "coverage")
            for name in parts:
                part = getattr(result, name)
                if part.status is ChainStatus.BROKEN:
                    line += f" ({name} at index {part.index}: {part.reason})"
                    break
        _out(line)
    _out(f"{len(results)} sessions verified, {broken} broken")
    return 1 if broken else 0


def audit_verify_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.session and not args.tenant:
        return _fail("--session needs --tenant")
    return asyncio.run(_audit_verify(settings, args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crp-gateway",
        description="An OpenAI-compatible LLM gateway with CRP governance.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_parser = commands.add_parser(
        "serve",
        help="run the gateway (HTTP on PORT, default 8100)",
        description="Run the gateway. With no DATABASE_URL it uses SQLite under "
        "CRP_DATA_DIR and applies migrations itself.",
    )
    serve_parser.add_argument(
        "--host", help="interface to bind (default: HOST or 0.0.0.0)"
    )
    serve_parser.add_argument(
        "--port", type=int, help="port to listen on (default: PORT or 8100)"
    )
    serve_parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (default: 1)"
    )
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser(
        "migrate",
        help="apply database migrations",
        description="Bring the database named by DATABASE_URL (or the embedded "
        "SQLite file) to the newest schema. Safe to run from several replicas.",
    )
    migrate_parser.set_defaults(handler=migrate_command)

    rotate_parser = commands.add_parser(
        "rotate-secret",
        help="re-wrap stored keys after SECRET_KEY changed",
        description="Re-wrap every sealed provider key and gateway key under the "
        "new SECRET_KEY. Give the old secret as SECRET_KEY_PREVIOUS.",
    )
    rotate_parser.set_defaults(handler=rotate_secret_command)

    audit_parser = commands.add_parser(
        "audit", help="audit records", description="Work with the audit store."
    )
    audit_commands = audit_parser.add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    verify_parser = audit_commands.add_parser(
        "verify",
        help="recompute the HMAC chains of stored sessions",
        description="Recompute every audited session's window and event chains "
        "and the tenants' rolling chains from the database; exit 1 if any is "
        "BROKEN.",
    )
    verify_parser.add_argument("--tenant", help="only this tenant (tnt_...)")
    verify_parser.add_argument("--session", help="only this session (crp_sess_...)")
    verify_parser.set_defaults(handler=audit_verify_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    configure_logging(level=settings.log_level.value, json=settings.is_production)
    status: int = args.handler(settings, args)
    return status
