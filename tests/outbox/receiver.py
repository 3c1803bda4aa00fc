"""A report receiver: a real aiohttp server on loopback, in its own thread.

It records every request (path, query, headers, raw body) and answers with the
replies scripted by :meth:`Receiver.reply`, then 200. ``hang`` makes it hold
every request open until the receiver stops (for timeouts)::

    with Receiver() as receiver:
        receiver.reply(500)            # the next request gets a 500
        ... deliver to receiver.url() ...
        assert receiver.wait_for(2)
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    def __init__(self, *, host: str = "127.0.0.1", hang: bool = False) -> None:
        self.host = host
        self.hang = hang
        self.port = 0
        self._requests: list[Received] = []
        self._replies: list[Reply] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def requests(self) -> list[Received]:
        with self._changed:
            return list(self._requests)

    def url(self, path: str = "/reports") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def reply(
        self, status: int, *, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        with self._changed:
            self._replies.extend(Reply(status, headers or {}) for _ in range(times))

    def wait_for(self, count: int, timeout: float = 15.0) -> bool:
        """Whether ``count`` requests arrived within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(
                lambda: len(self._requests) >= count, timeout=timeout
            )

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._changed:
            self._requests.append(
                Received(
                    request.path, request.query_string, dict(request.headers), body
                )
            )
            reply = self._replies.pop(0) if self._replies else Reply(200)
            self._changed.notify_all()
        if self.hang and self._stopping is not None:
            await self._stopping.wait()
        return web.Response(status=reply.status, headers=reply.headers)

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        self.port = listener.getsockname()[1]
        await web.SockSite(self._runner, listener).start()

    async def _stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
