"""What the gateway adds on top of an upstream call: latency, throughput and TTFT.

Run from the repository root::

    python -m bench.proxy_bench [--quick] [--out bench/results/proxy.json]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis redis://127.0.0.1:6379/0]

One run starts two fake upstreams (``tests.fakes.upstream``: one answering at once,
one after 20 ms) and the gateway (``python -m crp_gateway serve``) as subprocesses
on loopback, signs up two tenants (one per fake) with a custom provider each, and
then measures the same requests sent DIRECT (load generator -> fake) and THROUGH
THE GATEWAY (load generator -> gateway -> fake):

1. ``latency_c1``: non-streaming chat, 1 KB answer, concurrency 1; p50/p99.
2. ``throughput_c32``: non-streaming chat, 1 KB answer, 20 ms upstream delay,
   concurrency 32; requests per second and p50/p99.
3. ``ttft_stream_c1``: streaming chat, 1 KB answer, concurrency 1; time from the
   request to the first ``data:`` chunk with content (and to ``[DONE]``).

Method: with two or more usable CPUs the gateway gets the first one and the load
generator and fakes share the second (``sched_setaffinity``, inherited by every
thread of a child because it is set before ``exec``). Each leg is warmed up, then
direct and gateway batches alternate (ABBA order) so drift hits both legs. Times
come from ``time.perf_counter_ns``; percentiles are
``statistics.quantiles(n=100, method="inclusive")`` (linear interpolation between
closest ranks). "Added" figures are differences of the two legs' percentiles.

Both legs send the same body. The 1 KB answer is asked for twice: by the model
name ``fake-model-bytes-1024`` (the gateway routes it to the tenant's only
provider and passes it on) and by the ``x-fake-reply-bytes`` header (which the
gateway does not forward). A probe of each leg records the answer size it got.

When ``POST /v1/chat/completions`` on the gateway does not answer 200 at start
(404 while the endpoint does not exist yet), only the direct leg is measured and
the results mark the gateway leg unavailable, with the reason. Failed requests
are never timed; they are counted under ``errors``.

The gateway runs on the embedded default (SQLite, in-process state) unless
``--postgres`` (an admin URL: a fresh database is created there for the run and
dropped at the end, and the gateway runs in production mode with a generated
``SECRET_KEY``) or ``--redis`` (shared state in Redis) is given; see
`StoreServices`. ``environment.store`` and ``environment.shared_state`` in the
results say which. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.metadata
import json
import os
import platform
import secrets
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeGuard
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS_DIR: Final = REPO_ROOT / "bench" / "results"
UPSTREAM_KEY: Final = "sk-bench-123456789"
REPLY_BYTES_HEADER: Final = "x-fake-reply-bytes"
PACKAGES: Final = ("crp-gateway", "fastapi", "starlette", "uvicorn", "httpx", "uvloop")
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 5.0
REQUEST_TIMEOUT_S: Final = 30.0
_PR_SET_PDEATHSIG: Final = 1
_FAKE_ARGV: Final = (sys.executable, "-m", "tests.fakes.upstream")
_GATEWAY_ARGV: Final = (sys.executable, "-m", "crp_gateway", "serve")
#: ``serve`` builds the app with this Redis key prefix and reads none from the
#: environment (only ``create_app(redis_prefix=...)`` takes one).
REDIS_PREFIX: Final = "crp"

Metrics = dict[str, int]
"""One successful request's timings in nanoseconds, by metric name."""


class BenchError(Exception):
    """The benchmark cannot go on (a process did not start, set-up failed)."""


class RequestFailed(Exception):
    """One measured request failed; its ``kind`` is counted, never timed."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# ---------------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class Params:
    """Every knob of a run; written verbatim into the results."""

    quick: bool
    model: str
    reply_bytes: int
    latency_requests: int
    latency_warmup: int
    latency_batch: int
    throughput_requests: int
    throughput_warmup: int
    throughput_batch: int
    throughput_concurrency: int
    throughput_upstream_delay_ms: float
    ttft_requests: int
    ttft_warmup: int
    ttft_batch: int
    pin_cpus: bool
    client_pool: str


def make_params(
    *, quick: bool, model: str | None, pin_cpus: bool, client_pool: str
) -> Params:
    """The full run's sample sizes, or the much smaller ``--quick`` ones."""
    reply_bytes = 1024
    return Params(
        quick=quick,
        model=model or f"fake-model-bytes-{reply_bytes}",
        reply_bytes=reply_bytes,
        latency_requests=100 if quick else 2000,
        latency_warmup=20 if quick else 200,
        latency_batch=25 if quick else 100,
        throughput_requests=320 if quick else 4000,
        throughput_warmup=64 if quick else 500,
        throughput_batch=160 if quick else 500,
        throughput_concurrency=32,
        throughput_upstream_delay_ms=20.0,
        ttft_requests=50 if quick else 1000,
        ttft_warmup=10 if quick else 100,
        ttft_batch=25 if quick else 100,
        pin_cpus=pin_cpus,
        client_pool=client_pool,
    )


# ---------------------------------------------------------------------------- CPUs


@dataclass(frozen=True, slots=True)
class CpuPlan:
    """Which CPUs the gateway and the load side (generator and fakes) may use."""

    gateway: frozenset[int] | None
    load: frozenset[int] | None
    note: str


def plan_cpus(*, pin: bool) -> CpuPlan:
    """Gateway on the first usable CPU, everything else on the second."""
    usable = sorted(os.sched_getaffinity(0))
    if not pin:
        return CpuPlan(None, None, "pinning disabled (--no-pin)")
    if len(usable) < 2:
        return CpuPlan(None, None, f"only CPUs {usable} usable: not pinned")
    return CpuPlan(
        frozenset({usable[0]}),
        frozenset({usable[1]}),
        "gateway alone on one CPU; load generator and fakes on another",
    )


def _child_setup(cpus: frozenset[int] | None) -> Callable[[], None]:
    """Runs in the child before exec: pin it, and let it die with the bench."""

    def setup() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


# ----------------------------------------------------------------------- processes


@dataclass(slots=True)
class Processes:
    """The subprocesses of a run, each the leader of its own process group."""

    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cpus: frozenset[int] | None,
        cwd: Path,
        env: Mapping[str, str],
        stdout: int | IO[bytes],
        stderr: IO[bytes],
    ) -> subprocess.Popen[bytes]:
        # No threads exist yet when children are spawned, so preexec_fn is safe.
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=_child_setup(cpus),
        )
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        """SIGTERM every group, then SIGKILL whatever is still alive."""
        for child in self.children:
            _signal_group(child, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait(timeout=STOP_TIMEOUT_S)
            if child.stdout is not None:
                child.stdout.close()
        self.children.clear()


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_fake(
    processes: Processes, plan: CpuPlan, workdir: Path, *, delay_ms: float
) -> str:
    """Start a fake upstream on a free port; return its base URL (no ``/v1``)."""
    log = workdir / f"fake-{delay_ms:g}ms.log"
    with log.open("wb") as stderr:
        child = processes.spawn(
            [*_FAKE_ARGV, "--port", "0", "--delay-ms", str(delay_ms)],
            cpus=plan.load,
            cwd=REPO_ROOT,
            env=os.environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    line = _read_line(child, START_TIMEOUT_S)
    prefix = "listening on "
    if not line.startswith(prefix):
        raise BenchError(f"fake upstream did not start: {line!r}\n{_log_tail(log)}")
    return line.removeprefix(prefix).strip()


def _read_line(child: subprocess.Popen[bytes], timeout: float) -> str:
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    if not ready:
        return ""
    return child.stdout.readline().decode(errors="replace")


def free_port() -> int:
    """A port that was free a moment ago (the gateway CLI cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def gateway_env(data_dir: Path, store: Mapping[str, str]) -> dict[str, str]:
    """The gateway's environment, quiet and unthrottled, on the run's store.

    ``store`` is `StoreServices.gateway_env`: nothing but the gateway's own URL for
    the embedded default, or ``DATABASE_URL``, ``REDIS_URL`` and a ``SECRET_KEY``.
    """
    dropped = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY_PREVIOUS"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        CRP_DATA_DIR=str(data_dir),
        CRP_ENV="development",
        LOG_LEVEL="warning",
        CRP_SIGNUP_RATE_PER_HOUR="1000",
    )
    env.update(store)
    return env


def start_gateway(
    processes: Processes, plan: CpuPlan, workdir: Path, store: StoreServices
) -> str:
    """Start the gateway and wait for ``/health``; return its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "gateway.log"
    with log.open("wb") as output:
        child = processes.spawn(
            [*_GATEWAY_ARGV, "--host", "127.0.0.1", "--port", str(port)],
            cpus=plan.gateway,
            cwd=workdir,  # keeps a stray .env in the caller's directory out
            env=gateway_env(workdir / "data", store.gateway_env(url)),
            stdout=output,
            stderr=output,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError(
                f"gateway exited with {child.returncode}\n{_log_tail(log)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return url
        time.sleep(0.1)
    raise BenchError(f"gateway did not answer /health in time\n{_log_tail(log)}")


# -------------------------------------------------------------------------- stores


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """Where the gateway keeps its data: ``--postgres`` and ``--redis``, or None."""

    postgres_admin_url: str | None = None
    redis_url: str | None = None

    @property
    def store(self) -> str:
        return "postgresql" if self.postgres_admin_url else "sqlite"

    @property
    def shared_state(self) -> str:
        return "redis" if self.redis_url else "memory"

    def default_out(self, *, quick: bool) -> Path:
        """``proxy[-postgres][-redis][-quick].json``: no store overwrites another."""
        parts = ["proxy"]
        if self.postgres_admin_url:
            parts.append("postgres")
        if self.redis_url:
            parts.append("redis")
        if quick:
            parts.append("quick")
        return RESULTS_DIR / ("-".join(parts) + ".json")


def _asyncpg_dsn(url: str) -> str:
    """A DSN asyncpg takes, from any URL form the gateway's settings accept."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() in {"postgres", "postgresql+asyncpg"}:
        return f"postgresql{sep}{rest}"
    return url


def with_database(url: str, database: str) -> str:
    """``url`` (an admin URL) pointing at ``database`` instead, query kept."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _pg_execute(admin_url: str, statement: str) -> str:
    """Run one statement on the admin database; the server's version."""
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=5)
    try:
        await connection.execute(statement, timeout=30)
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


async def _redis_version(url: str) -> str:
    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        await client.ping()
        info = await client.info("server")
        return str(info.get("redis_version", "unknown"))
    finally:
        await client.aclose()


async def _delete_redis_keys(url: str, patterns: Sequence[str]) -> int:
    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    deleted = 0
    try:
        for pattern in patterns:
            async for key in client.scan_iter(match=pattern, count=500):
                deleted += await client.delete(key)
    finally:
        await client.aclose()
    return deleted


_PG_ERRORS: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
_REDIS_ERRORS: Final = (OSError, TimeoutError, RedisError)


@dataclass(slots=True)
class StoreServices:
    """The run's PostgreSQL database and Redis, set up and cleaned up.

    With ``--postgres`` a fresh database ``crp_bench_<12 hex>`` is created on the
    admin URL and dropped again by `close` (``WITH (FORCE)``, after the gateway
    stopped). ``serve`` reads no Redis key prefix from the environment, so with
    ``--redis`` the gateway writes under its fixed prefix ``crp``; `close` deletes
    the keys of the run's tenants, and only the sign-up counter of 127.0.0.1 (two
    sign-ups, expiring within the hour) is left, shared with any other gateway
    on that Redis database.
    """

    choice: StoreChoice
    database: str | None = None
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    tenant_ids: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def open(self) -> None:
        """Check Redis answers and create the database (before any process)."""
        redis_url = self.choice.redis_url
        if redis_url is not None:
            try:
                self.versions["redis_server"] = asyncio.run(_redis_version(redis_url))
            except _REDIS_ERRORS as exc:
                raise BenchError(f"Redis at --redis did not answer: {exc!r}") from exc
        admin_url = self.choice.postgres_admin_url
        if admin_url is not None:
            name = f"crp_bench_{secrets.token_hex(6)}"
            try:
                version = asyncio.run(
                    _pg_execute(admin_url, f'CREATE DATABASE "{name}"')
                )
            except _PG_ERRORS as exc:
                raise BenchError(
                    f"could not create a database at --postgres: {exc!r}"
                ) from exc
            self.database = name
            self.versions["postgresql_server"] = version
            print(f"PostgreSQL: created database {name}", flush=True)

    def gateway_env(self, gateway_url: str) -> dict[str, str]:
        """What the gateway needs on this store, besides `gateway_env`'s basics."""
        env = {"CRP_GATEWAY_URL": gateway_url, "APP_BASE_URL": gateway_url}
        admin_url = self.choice.postgres_admin_url
        if admin_url is not None and self.database is not None:
            # PostgreSQL is production: a real SECRET_KEY, migrations on start.
            env.update(
                DATABASE_URL=with_database(admin_url, self.database),
                CRP_ENV="production",
                SECRET_KEY=self.secret_key,
                CRP_MIGRATE_ON_START="true",
            )
        if self.choice.redis_url is not None:
            env["REDIS_URL"] = self.choice.redis_url
        return env

    def describe(self) -> dict[str, Any]:
        """The store part of the results' ``environment``."""
        described: dict[str, Any] = {
            "store": self.choice.store,
            "shared_state": self.choice.shared_state,
        }
        if self.choice.redis_url is not None:
            described["redis_key_prefix"] = (
                f"{REDIS_PREFIX} (the gateway's fixed prefix, shared)"
            )
        described.update(self.versions)
        return described

    def close(self) -> None:
        """Best effort, after the gateway stopped: drop the database, delete keys."""
        admin_url, name = self.choice.postgres_admin_url, self.database
        if admin_url is not None and name is not None:
            drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            try:
                asyncio.run(_pg_execute(admin_url, drop))
            except _PG_ERRORS as exc:
                print(f"warning: could not drop database {name}: {exc!r}", flush=True)
            else:
                self.database = None
                print(f"PostgreSQL: dropped database {name}", flush=True)
        redis_url = self.choice.redis_url
        if redis_url is not None and self.tenant_ids:
            patterns = [f"{REDIS_PREFIX}:{{{tid}}}:*" for tid in self.tenant_ids]
            try:
                asyncio.run(_delete_redis_keys(redis_url, patterns))
            except _REDIS_ERRORS as exc:
                print(f"warning: could not delete Redis keys: {exc!r}", flush=True)
            self.tenant_ids.clear()


# --------------------------------------------------------------------------- set-up


@dataclass(frozen=True, slots=True)
class Leg:
    """Where one side of a comparison sends its chat requests."""

    name: str
    url: str
    headers: Mapping[str, str]


def chat_body(model: str, *, stream: bool) -> bytes:
    """The request body, encoded once so both legs pay the same client cost."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say something."}],
        "stream": stream,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _headers(token: str, reply_bytes: int) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        REPLY_BYTES_HEADER: str(reply_bytes),
    }


def direct_leg(fake_url: str, params: Params) -> Leg:
    """The load generator calls the fake with the provider key, as the gateway does."""
    headers = _headers(UPSTREAM_KEY, params.reply_bytes)
    return Leg("direct", f"{fake_url}/v1/chat/completions", headers)


def sign_up_tenant(
    client: httpx.Client, gateway_url: str, fake_url: str, tenant_ids: list[str]
) -> str:
    """A new tenant whose custom provider ``fake`` is ``fake_url``; its API key.

    The tenant's id is appended to ``tenant_ids`` (its Redis keys go at the end).
    """
    suffix = os.urandom(4).hex()
    response = client.post(
        f"{gateway_url}/v1/tenants",
        json={"name": f"bench-{suffix}", "email": f"bench-{suffix}@example.com"},
    )
    _expect(response, 201, "sign-up")
    api_key: str = response.json()["api_key"]
    tenant_ids.append(response.json()["tenant_id"])
    response = client.post(
        f"{gateway_url}/v1/providers/custom",
        headers={"authorization": f"Bearer {api_key}"},
        json={
            "name": "fake",
            "base_url": f"{fake_url}/v1",
            "api_key": UPSTREAM_KEY,
            "default_model": "fake-model",
        },
    )
    _expect(response, 201, "provider registration")
    return api_key


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")


@dataclass(frozen=True, slots=True)
class Probe:
    """One non-streaming call made before measuring, to check a leg works."""

    ok: bool
    status: int | None
    reply_bytes: int | None
    detail: str


def probe(client: httpx.Client, leg: Leg, model: str) -> Probe:
    """Call the leg once; report whether it answered a chat completion, and its size."""
    try:
        response = client.post(
            leg.url, content=chat_body(model, stream=False), headers=dict(leg.headers)
        )
    except httpx.HTTPError as exc:
        return Probe(False, None, None, f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return Probe(False, response.status_code, None, response.text[:300])
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError):
        return Probe(False, 200, None, f"not a chat completion: {response.text[:300]}")
    size = len(content.encode()) if isinstance(content, str) else None
    return Probe(True, 200, size, "ok")


# ----------------------------------------------------------------------- measuring


@dataclass(slots=True)
class Samples:
    """What one leg of one scenario collected."""

    values: dict[str, list[int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    wall_ns: int = 0

    def add(self, metrics: Metrics) -> None:
        for name, value in metrics.items():
            self.values.setdefault(name, []).append(value)

    @property
    def ok(self) -> int:
        return min((len(v) for v in self.values.values()), default=0)


Call = Callable[[httpx.AsyncClient, Leg], Awaitable[Metrics]]


async def call_plain(client: httpx.AsyncClient, leg: Leg, body: bytes) -> Metrics:
    """One non-streaming request: the time until the whole body has arrived."""
    start = time.perf_counter_ns()
    try:
        response = await client.post(leg.url, content=body, headers=leg.headers)
    except httpx.HTTPError as exc:
        raise RequestFailed(type(exc).__name__) from exc
    elapsed = time.perf_counter_ns() - start
    if response.status_code != 200:
        raise RequestFailed(f"HTTP {response.status_code}")
    return {"latency": elapsed}


def _has_content(payload: str) -> bool:
    try:
        chunk = json.loads(payload)
        return bool(chunk["choices"][0]["delta"].get("content"))
    except (ValueError, LookupError, TypeError, AttributeError):
        return False


async def call_stream(client: httpx.AsyncClient, leg: Leg, body: bytes) -> Metrics:
    """One streaming request: time to the first content chunk and to ``[DONE]``."""
    start = time.perf_counter_ns()
    first: int | None = None
    try:
        async with client.stream(
            "POST", leg.url, content=body, headers=leg.headers
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise RequestFailed(f"HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    if first is None:
                        raise RequestFailed("no content before [DONE]")
                    done = time.perf_counter_ns() - start
                    return {"ttft": first, "total": done}
                if first is None and _has_content(payload):
                    first = time.perf_counter_ns() - start
    except httpx.HTTPError as exc:
        raise RequestFailed(type(exc).__name__) from exc
    raise RequestFailed("stream ended without [DONE]")


async def run_batch(
    clients: Sequence[httpx.AsyncClient],
    leg: Leg,
    call: Call,
    *,
    requests: int,
    concurrency: int,
    samples: Samples | None,
) -> None:
    """``requests`` calls by ``concurrency`` workers; ``samples=None`` is a warm-up."""
    remaining = requests

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                metrics = await call(client, leg)
            except RequestFailed as failure:
                if samples is not None:
                    samples.errors[failure.kind] += 1
                continue
            if samples is not None:
                samples.add(metrics)

    start = time.perf_counter_ns()
    workers = min(concurrency, requests)
    await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(workers)))
    if samples is not None:
        samples.wall_ns += time.perf_counter_ns() - start


def batch_sizes(total: int, batch: int) -> Iterator[int]:
    """``total`` split into batches of ``batch`` (the last one may be smaller)."""
    while total > 0:
        yield min(batch, total)
        total -= batch


@dataclass(frozen=True, slots=True)
class Workload:
    """One scenario's shape: what to call, how often, how many at once."""

    call: Call
    requests: int
    warmup: int
    batch: int
    concurrency: int


async def measure(
    clients: Sequence[httpx.AsyncClient], legs: Sequence[Leg], work: Workload
) -> dict[str, Samples]:
    """Warm every leg up, then alternate their batches in ABBA order."""
    for leg in legs:
        await run_batch(
            clients,
            leg,
            work.call,
            requests=work.warmup,
            concurrency=work.concurrency,
            samples=None,
        )
    collected = {leg.name: Samples() for leg in legs}
    for index, size in enumerate(batch_sizes(work.requests, work.batch)):
        order = legs if index % 2 == 0 else list(reversed(legs))
        for leg in order:
            await run_batch(
                clients,
                leg,
                work.call,
                requests=size,
                concurrency=work.concurrency,
                samples=collected[leg.name],
            )
    return collected


# ------------------------------------------------------------------------ figures


def summarize(values_ns: Sequence[int]) -> dict[str, float | int] | None:
    """Count, min, mean, p50, p90, p99 and max in milliseconds (None if empty)."""
    if len(values_ns) < 2:
        return None
    ms = [value / 1e6 for value in values_ns]
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "count": len(ms),
        "min_ms": round(min(ms), 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "p50_ms": round(cuts[49], 4),
        "p90_ms": round(cuts[89], 4),
        "p99_ms": round(cuts[98], 4),
        "max_ms": round(max(ms), 4),
    }


def leg_report(samples: Samples) -> dict[str, Any]:
    """One leg's summaries per metric, errors, and throughput."""
    report: dict[str, Any] = {
        name: summarize(values) for name, values in samples.values.items()
    }
    report["ok"] = samples.ok
    report["errors"] = dict(samples.errors)
    seconds = samples.wall_ns / 1e9
    report["wall_s"] = round(seconds, 4)
    report["requests_per_second"] = round(samples.ok / seconds, 2) if seconds else None
    return report


def added(
    direct: Mapping[str, Any], gateway: Mapping[str, Any], *, ratio: bool
) -> dict[str, Any]:
    """Gateway minus direct, per metric and percentile; and the throughput ratio."""
    diff: dict[str, Any] = {}
    for metric, summary in direct.items():
        other = gateway.get(metric)
        if not (_is_summary(summary) and _is_summary(other)):
            continue
        diff[metric] = {
            key: round(other[key] - summary[key], 4)
            for key in ("p50_ms", "p99_ms", "mean_ms")
        }
    base, through = direct["requests_per_second"], gateway["requests_per_second"]
    if ratio and base and through is not None:
        diff["throughput_ratio"] = round(through / base, 4)
    return diff


def _is_summary(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and "p50_ms" in value


def scenario_report(
    description: str,
    collected: Mapping[str, Samples],
    gateway_reason: str | None,
    *,
    ratio: bool,
) -> dict[str, Any]:
    """Both legs of a scenario and their difference (None where unavailable)."""
    direct = leg_report(collected["direct"])
    gateway = leg_report(collected["gateway"]) if "gateway" in collected else None
    return {
        "description": description,
        "direct": direct,
        "gateway": gateway,
        "gateway_unavailable": gateway_reason,
        "added": added(direct, gateway, ratio=ratio) if gateway is not None else None,
    }


# ---------------------------------------------------------------------- environment


def cpu_model() -> str:
    """The ``model name`` of the first CPU in /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The short HEAD commit, or None outside a repository or without git."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def environment(
    plan: CpuPlan, pids: Mapping[str, int], loop: str, store: Mapping[str, Any]
) -> dict[str, Any]:
    """Where and with what the numbers were taken (``store``: `describe`)."""
    affinity: dict[str, list[int] | None] = {}
    for role, pid in pids.items():
        try:
            affinity[role] = sorted(os.sched_getaffinity(pid))
        except OSError:
            affinity[role] = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "gateway_governance": os.environ.get("CRP_GOVERNANCE", "true"),
        "gateway_audit": os.environ.get("CRP_AUDIT", "true"),
        **store,
        "load_generator_loop": loop,
        "cpu_pinning": {
            "note": plan.note,
            "gateway": sorted(plan.gateway) if plan.gateway else None,
            "load_generator_and_fakes": sorted(plan.load) if plan.load else None,
            "observed_affinity": affinity,
        },
    }


# -------------------------------------------------------------------------- output


def _cell(value: Any, signed: bool = False) -> str:
    if not isinstance(value, float | int):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _pick(report: Mapping[str, Any] | None, *keys: str) -> Any:
    value: Any = report
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def table(scenarios: Mapping[str, Mapping[str, Any]]) -> str:
    """A small fixed-width table of the headline figures."""
    rows = [
        ("latency_c1", "latency", "p50_ms", "latency c=1, p50 ms"),
        ("latency_c1", "latency", "p99_ms", "latency c=1, p99 ms"),
        ("throughput_c32", None, "requests_per_second", "c=32 20ms, req/s"),
        ("throughput_c32", "latency", "p99_ms", "c=32 20ms, p99 ms"),
        ("ttft_stream_c1", "ttft", "p50_ms", "stream TTFT, p50 ms"),
        ("ttft_stream_c1", "ttft", "p99_ms", "stream TTFT, p99 ms"),
    ]
    lines = [f"{'figure':<24}{'direct':>12}{'gateway':>12}{'added':>12}"]
    for scenario, metric, key, label in rows:
        report = scenarios.get(scenario, {})
        path = (metric, key) if metric else (key,)
        direct = _pick(report.get("direct"), *path)
        gateway = _pick(report.get("gateway"), *path)
        if metric is None:
            diff = _pick(report.get("added"), "throughput_ratio")
            extra = f"{'x' + _cell(diff) if diff else 'n/a':>12}"
        else:
            extra = f"{_cell(_pick(report.get('added'), metric, key), True):>12}"
        lines.append(f"{label:<24}{_cell(direct):>12}{_cell(gateway):>12}{extra}")
    cpu = [
        f"{name} {_cell(_pick(report, 'cpu', 'gateway_ms_per_request'))}"
        for name, report in scenarios.items()
    ]
    lines.append("gateway CPU ms/request (warm-up included): " + ", ".join(cpu))
    return "\n".join(lines)


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


# ----------------------------------------------------------------------------- run


@dataclass(frozen=True, slots=True)
class Targets:
    """The legs of the run: direct always, gateway when its probe succeeded."""

    fast: list[Leg]
    slow: list[Leg]
    gateway_reason: str | None
    probes: dict[str, Any]


def prepare_targets(
    gateway_url: str,
    fast_url: str,
    slow_url: str,
    params: Params,
    tenant_ids: list[str],
) -> Targets:
    """Sign up a tenant per fake (ids into ``tenant_ids``), then probe every leg."""
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        fast_key = sign_up_tenant(client, gateway_url, fast_url, tenant_ids)
        slow_key = sign_up_tenant(client, gateway_url, slow_url, tenant_ids)
        fast = [direct_leg(fast_url, params)]
        slow = [direct_leg(slow_url, params)]
        headers = _headers(fast_key, params.reply_bytes)
        gateway_fast = Leg("gateway", f"{gateway_url}/v1/chat/completions", headers)
        probes = {leg.name: probe(client, leg, params.model) for leg in fast}
        if not probes["direct"].ok:
            raise BenchError(f"the fake upstream failed: {probes['direct'].detail}")
        probes["gateway"] = probe(client, gateway_fast, params.model)
    reason = _gateway_reason(probes["gateway"])
    if reason is None:
        fast.append(gateway_fast)
        slow_headers = _headers(slow_key, params.reply_bytes)
        slow.append(Leg("gateway", gateway_fast.url, slow_headers))
    return Targets(fast, slow, reason, {k: asdict(v) for k, v in probes.items()})


def _gateway_reason(result: Probe) -> str | None:
    if result.ok:
        return None
    if result.status == 404:
        return f"POST /v1/chat/completions answered 404: {result.detail}"
    return f"POST /v1/chat/completions failed ({result.status}): {result.detail}"


@contextlib.asynccontextmanager
async def client_pool(params: Params) -> AsyncIterator[list[httpx.AsyncClient]]:
    """The load generator's keep-alive HTTP/1.1 clients; worker ``i`` uses ``i % n``.

    ``per-worker`` (default): one client per concurrent worker, each holding at most
    one connection per leg. ``shared``: one client with a connection per worker and
    leg. httpcore scans its whole pool on every request, so a shared pool of 64
    connections costs the load generator ~5 ms of CPU per request and caps it near
    200 requests/s on this class of machine: it would measure httpx, not the
    gateway. Both modes reuse connections across batches.
    """
    if params.client_pool == "shared":
        size = 2 * params.throughput_concurrency
        sizes = [size]
    else:
        sizes = [2] * params.throughput_concurrency
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for size in sizes:
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            client = httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S)
            clients.append(await stack.enter_async_context(client))
        yield clients


@dataclass(frozen=True, slots=True)
class Scenario:
    """One named measurement: its legs, its workload, and what it means."""

    key: str
    description: str
    legs: list[Leg]
    work: Workload


def scenarios_of(targets: Targets, params: Params) -> list[Scenario]:
    """The three scenarios of the issue, in the order they run."""
    plain = chat_body(params.model, stream=False)
    stream = chat_body(params.model, stream=True)

    async def plain_call(client: httpx.AsyncClient, leg: Leg) -> Metrics:
        return await call_plain(client, leg, plain)

    async def stream_call(client: httpx.AsyncClient, leg: Leg) -> Metrics:
        return await call_stream(client, leg, stream)

    p = params
    return [
        Scenario(
            "latency_c1",
            "non-streaming, 1 KB answer, upstream delay 0, concurrency 1",
            targets.fast,
            Workload(
                plain_call, p.latency_requests, p.latency_warmup, p.latency_batch, 1
            ),
        ),
        Scenario(
            "throughput_c32",
            f"non-streaming, 1 KB answer, upstream delay "
            f"{p.throughput_upstream_delay_ms:g} ms, concurrency "
            f"{p.throughput_concurrency}",
            targets.slow,
            Workload(
                plain_call,
                p.throughput_requests,
                p.throughput_warmup,
                p.throughput_batch,
                p.throughput_concurrency,
            ),
        ),
        Scenario(
            "ttft_stream_c1",
            "streaming, 1 KB answer (one word per chunk), upstream delay 0, "
            "concurrency 1; ttft = first data: chunk with content, total = [DONE]",
            targets.fast,
            Workload(stream_call, p.ttft_requests, p.ttft_warmup, p.ttft_batch, 1),
        ),
    ]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a whole process (all threads), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # fields[0] is field 3, ``state``
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float | None]:
    return {role: cpu_seconds(pid) for role, pid in pids.items()}


def cpu_report(
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    gateway_requests: int,
) -> dict[str, Any]:
    """CPU seconds each process spent in a scenario (warm-ups included)."""
    spent = {
        role: round(end - start, 3)
        for role, start in before.items()
        if start is not None and (end := after.get(role)) is not None
    }
    report: dict[str, Any] = {"seconds": spent}
    gateway = spent.get("gateway")
    if gateway is not None and gateway_requests:
        report["gateway_ms_per_request"] = round(1000 * gateway / gateway_requests, 3)
    return report


async def run_scenarios(
    targets: Targets, params: Params, pids: Mapping[str, int]
) -> dict[str, Any]:
    """Every scenario over the same keep-alive clients (see `client_pool`)."""
    reports: dict[str, Any] = {}
    async with client_pool(params) as clients:
        for scenario in scenarios_of(targets, params):
            print(f"{scenario.key}: {scenario.description} ...", flush=True)
            before = cpu_snapshot(pids)
            collected = await measure(clients, scenario.legs, scenario.work)
            after = cpu_snapshot(pids)
            attempted = scenario.work.warmup + scenario.work.requests
            gateway_requests = attempted if "gateway" in collected else 0
            report = scenario_report(
                scenario.description,
                collected,
                targets.gateway_reason,
                ratio=scenario.work.concurrency > 1,
            )
            report["cpu"] = cpu_report(before, after, gateway_requests)
            reports[scenario.key] = report
    return reports


def run_async(
    coroutine: Coroutine[Any, Any, dict[str, Any]],
) -> tuple[dict[str, Any], str]:
    """Run on uvloop when installed (a faster load generator), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine), "asyncio"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine), "uvloop"


def benchmark(params: Params, out: Path, choice: StoreChoice) -> dict[str, Any]:
    """Start everything, measure, stop everything; write and return the results."""
    plan = plan_cpus(pin=params.pin_cpus)
    if plan.load is not None:
        os.sched_setaffinity(0, plan.load)
    processes = Processes()
    store = StoreServices(choice)
    with tempfile.TemporaryDirectory(prefix="crp-bench-") as tmp:
        workdir = Path(tmp)
        try:
            store.open()
            fast_url = start_fake(processes, plan, workdir, delay_ms=0)
            slow_url = start_fake(
                processes, plan, workdir, delay_ms=params.throughput_upstream_delay_ms
            )
            gateway_url = start_gateway(processes, plan, workdir, store)
            pids = {"load_generator": os.getpid()}
            pids.update(
                zip(
                    ("fake_fast", "fake_slow", "gateway"),
                    (c.pid for c in processes.children),
                    strict=True,
                )
            )
            targets = prepare_targets(
                gateway_url, fast_url, slow_url, params, store.tenant_ids
            )
            _announce(targets)
            scenarios, loop = run_async(run_scenarios(targets, params, pids))
            env = environment(plan, pids, loop, store.describe())
        finally:
            try:
                processes.stop_all()
            finally:
                store.close()
    results = {
        "schema": 1,
        "environment": env,
        "parameters": asdict(params),
        "gateway_leg": {
            "available": targets.gateway_reason is None,
            "unavailable_reason": targets.gateway_reason,
            "probes": targets.probes,
        },
        "scenarios": scenarios,
    }
    write_results(out, results)
    return results


def _announce(targets: Targets) -> None:
    if targets.gateway_reason is not None:
        print(
            "gateway leg UNAVAILABLE, measuring the direct leg only:\n  "
            + targets.gateway_reason,
            flush=True,
        )
        return
    sizes = {name: p["reply_bytes"] for name, p in targets.probes.items()}
    if len(set(sizes.values())) != 1:
        print(f"warning: the legs' answers differ in size (bytes): {sizes}", flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxy_bench",
        description="Measure what the gateway adds to direct upstream calls.",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke sample")
    parser.add_argument(
        "--out",
        type=Path,
        help="results JSON (default bench/results/proxy.json; -postgres, -redis "
        "and -quick are added to the name with those options)",
    )
    parser.add_argument(
        "--model",
        help="model sent in each chat request (default fake-model-bytes-1024: the "
        "fake sizes its answer by this suffix, which the gateway passes through)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin processes to CPUs"
    )
    parser.add_argument(
        "--client-pool",
        choices=("per-worker", "shared"),
        default="per-worker",
        help="one httpx client per concurrent worker (default), or one shared pool",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="admin URL of a PostgreSQL server (such as "
        "postgresql://postgres@127.0.0.1:5432/postgres): the gateway runs on a fresh "
        "database created there, dropped at the end",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="Redis URL (such as redis://127.0.0.1:6379/0) for the gateway's shared "
        "state, instead of in-process memory",
    )
    args = parser.parse_args(argv)
    if args.postgres is not None:
        scheme = urlsplit(args.postgres).scheme.lower()
        if scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
            parser.error("--postgres must be a postgres:// or postgresql:// URL")
    if args.redis is not None:
        scheme = urlsplit(args.redis).scheme.lower()
        if scheme not in {"redis", "rediss", "unix"}:
            parser.error("--redis must be a redis://, rediss:// or unix:// URL")
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    params = make_params(
        quick=args.quick,
        model=args.model,
        pin_cpus=not args.no_pin,
        client_pool=args.client_pool,
    )
    choice = StoreChoice(postgres_admin_url=args.postgres, redis_url=args.redis)
    out: Path = args.out or choice.default_out(quick=args.quick)
    signal.signal(signal.SIGTERM, _terminate)
    # Also when started in the background, where the shell ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        results = benchmark(params, out, choice)
    except BenchError as exc:
        print(f"proxy_bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("proxy_bench: interrupted; subprocesses stopped", file=sys.stderr)
        return 130
    print()
    print(table(results["scenarios"]))
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
