"""The ``crp-gateway`` command: serve, migrate, rotate-secret, audit.

Each command is a thin wrapper over a plain function. Configuration comes from
the environment (see ``settings.py``); a bad configuration prints one line and
exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from crp_gateway import __version__
from crp_gateway.logging import configure_logging
from crp_gateway.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from crp_gateway.audit.chain import ChainStatus, Verification
    from crp_gateway.audit.retention import RetentionReport, TenantErasure


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


_SESSION_PARTS = ("windows", "events", "tenant_chain", "coverage")
#: What an erased span of each part counts: windows, events or tenant links.
_ERASED = {"windows": "windows", "events": "events", "tenant_chain": "links"}


def _verify_line(
    tenant: str,
    name: str,
    status: ChainStatus,
    parts: Sequence[tuple[str, Verification]],
) -> str:
    """``<tenant> <what> <STATUS>``, then where it broke or which spans were
    erased (a session's own; the tenant chain's have a line of their own)."""
    from crp_gateway.audit.chain import ChainStatus

    line = f"{tenant} {name} {status.value}"
    for part_name, part in parts:
        if part.status is ChainStatus.BROKEN:
            return line + f" ({part_name} at index {part.index}: {part.reason})"
    if status is not ChainStatus.TRUNCATED:
        return line
    own = parts if len(parts) == 1 else [p for p in parts if p[0] != "tenant_chain"]
    erased = [
        f"{_ERASED[part_name]} {first}..{last}"
        for part_name, part in own
        if part_name in _ERASED
        for first, last in part.truncated
    ]
    return line + f" (erased {', '.join(erased)})" if erased else line


async def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from crp_gateway.audit.chain import ChainStatus
    from crp_gateway.audit.master_keys import TenantKeys
    from crp_gateway.audit.verify import verify_store
    from crp_gateway.runtime import build_vault
    from crp_gateway.store.database import create_engine, create_sessionmaker

    engine = create_engine(settings.store_url)
    try:
        sessions = create_sessionmaker(engine)
        tenants = await verify_store(
            sessions,
            TenantKeys(sessions, build_vault(settings)),
            tenant_id=args.tenant,
            session_id=args.session,
        )
    finally:
        await engine.dispose()
    statuses: list[ChainStatus] = []
    for tenant in tenants:
        tid = tenant.tenant_id
        for result in tenant.sessions:
            statuses.append(result.status)
            parts = [(name, getattr(result, name)) for name in _SESSION_PARTS]
            _out(_verify_line(tid, result.session_id, result.status, parts))
        chain = [("tenant_chain", tenant.chain)]
        _out(_verify_line(tid, "tenant-chain", tenant.chain.status, chain))
    truncated = statuses.count(ChainStatus.TRUNCATED)
    broken = statuses.count(ChainStatus.BROKEN)
    _out(f"{truncated} sessions TRUNCATED (erased by retention)")
    _out(f"{len(statuses)} sessions verified, {broken} broken")
    failed = any(tenant.status is ChainStatus.BROKEN for tenant in tenants)
    return 1 if failed else 0


def audit_verify_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.session and not args.tenant:
        return _fail("--session needs --tenant")
    return asyncio.run(_audit_verify(settings, args))


_DAYS = re.compile(r"(\d{1,5})d")


def _cutoff(value: str) -> datetime:
    """``--before``: an RFC 3339 date-time with a zone, or ``<N>d`` (N days ago)."""
    if days := _DAYS.fullmatch(value):
        return datetime.now(UTC) - timedelta(days=int(days.group(1)))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            "give an RFC 3339 date-time with a zone (2026-01-31T00:00:00Z) or Nd"
        )
    return moment


def _erasure_line(label: str, counts: RetentionReport | TenantErasure) -> str:
    sessions = counts.sessions
    count = sessions if isinstance(sessions, int) else len(sessions)
    return (
        f"{label}: {count} sessions, {counts.windows} windows, "
        f"{counts.events} events, {counts.links} tenant-chain links"
    )


async def _audit_retain(settings: Settings, args: argparse.Namespace) -> int:
    from crp_gateway.audit.master_keys import TenantKeys
    from crp_gateway.audit.retention import RetentionRefused, erase_before
    from crp_gateway.runtime import build_vault
    from crp_gateway.store.database import create_engine, create_sessionmaker

    engine = create_engine(settings.store_url)
    try:
        sessions = create_sessionmaker(engine)
        report = await erase_before(
            sessions,
            TenantKeys(sessions, build_vault(settings)),
            tenant_id=args.tenant,
            before=args.before,
            reason=args.reason,
            dry_run=not args.yes,
        )
    except (RetentionRefused, ValueError) as exc:
        return _fail(f"retention refused: {exc}", 1)
    finally:
        await engine.dispose()
    for tenant in report.tenants:
        _out(_erasure_line(tenant.tenant_id, tenant))
    cutoff = report.before.isoformat()
    if report.dry_run:
        _out(_erasure_line(f"dry run, would erase before {cutoff}", report))
        _out("nothing was erased; add --yes to erase")
    else:
        _out(_erasure_line(f"erased before {cutoff}", report))
        _out(f"{report.markers} TRUNCATED markers written")
    return 0


def audit_retain_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_audit_retain(settings, args))


async def _audit_rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    from crp_gateway.audit.master_keys import TenantKeys
    from crp_gateway.runtime import build_vault
    from crp_gateway.store.database import create_engine, create_sessionmaker
    from crp_gateway.store.repositories import TenantRepository

    engine = create_engine(settings.store_url)
    try:
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            known = args.tenant in await TenantRepository(session).all_ids()
        if not known:
            return _fail(f"no tenant {args.tenant}", status=1)
        keys = TenantKeys(sessions, build_vault(settings))
        version = await keys.rotate(args.tenant)
    finally:
        await engine.dispose()
    _out(f"{args.tenant}: audit master key version {version} is current")
    return 0


def audit_rotate_key_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_audit_rotate_key(settings, args))


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

    retain_parser = audit_commands.add_parser(
        "retain",
        help="erase old audited sessions, marking them TRUNCATED",
        description="Erase every session whose newest window is older than "
        "--before (its windows and events) and the start of the tenant's rolling "
        "chain they fill, leaving a TRUNCATED marker for each erased span, so "
        "`audit verify` reports TRUNCATED, not BROKEN. Without --yes it only "
        "prints what it would erase.",
    )
    retain_parser.add_argument(
        "--before",
        required=True,
        type=_cutoff,
        help="cutoff: an RFC 3339 date-time (2026-01-31T00:00:00Z) or Nd, N days "
        "ago; at least one hour ago",
    )
    retain_parser.add_argument("--tenant", help="only this tenant (tnt_...)")
    retain_parser.add_argument(
        "--reason",
        default="retention",
        help="recorded in every marker (default: retention)",
    )
    retain_parser.add_argument(
        "--yes", action="store_true", help="erase (default: a dry run)"
    )
    retain_parser.set_defaults(handler=audit_retain_command)

    rotate_key_parser = audit_commands.add_parser(
        "rotate-key",
        help="start a tenant's next audit master key version",
        description="Add the tenant's next audit master key version (random, "
        "sealed by the vault). New sessions and tenant-chain links use it; "
        "records and session tokens made under older versions keep verifying "
        "with theirs. Running gateways switch within a minute.",
    )
    rotate_key_parser.add_argument("--tenant", required=True, help="tnt_...")
    rotate_key_parser.set_defaults(handler=audit_rotate_key_command)
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
