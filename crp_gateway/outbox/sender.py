"""One POST to a tenant-chosen URL, guarded against SSRF (G26, 006§7.2).

A ``report-uri`` is chosen by whoever writes the policy, so the gateway must not
become a way to reach its own network. Every delivery:

* parses the URL with the parser aiohttp itself uses (yarl), so the host we vet
  is the host it connects to; refuses user info in the URL;
* requires ``https`` in production (``http`` is allowed otherwise);
* resolves the host once and refuses the target if *any* address is private,
  loopback, link-local, multicast, reserved, unspecified or otherwise not
  globally routable (an IPv4-mapped IPv6 address is judged as its IPv4 address);
* connects only to the addresses it vetted: the connection's resolver is pinned
  to them, so a second DNS answer (rebinding) cannot swap in another;
* never follows a redirect (a 3xx is a failed delivery) and ignores proxy
  environment variables;
* gives up after one total timeout (5 s by default) covering resolution,
  connection and the response status.

``CRP_REPORTS_ALLOW_PRIVATE=true`` lifts the address check (tests, closed
networks); the other rules stay. A refused target is a permanent failure: no
retry can make it acceptable. Errors are our own short words, never the URL,
an exception's text or anything the receiver sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from crp_gateway.providers.upstream import USER_AGENT

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one POST; ``permanent`` failures are not retried."""

    ok: bool
    error: str | None = None
    permanent: bool = False
    status: int | None = None


class _Refused(Exception):
    """The target is not one the gateway may send to."""


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class PinnedResolver(AbstractResolver):
    """Answers for one host with addresses vetted beforehand, and nothing else."""

    def __init__(self, host: str, addresses: Sequence[IPAddress]) -> None:
        self._host = host
        self._addresses = tuple(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:
            raise OSError("the pinned resolver knows only the vetted host")
        wanted = {
            socket.AF_INET: 4,
            socket.AF_INET6: 6,
        }.get(family)
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET if address.version == 4 else socket.AF_INET6,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in self._addresses
            if wanted is None or address.version == wanted
        ]

    async def close(self) -> None:
        return None


class ReportSender:
    def __init__(
        self, *, require_https: bool, allow_private: bool, timeout: float
    ) -> None:
        self._require_https = require_https
        self._allow_private = allow_private
        self._timeout = timeout

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """POST ``body`` to ``url``; never raises for a network or target problem."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._send(url, body, headers)
        except TimeoutError:
            return Delivery(ok=False, error="timeout")

    async def _send(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> Delivery:
        try:
            target, addresses = await self._vet(url)
        except _Refused as refused:
            return Delivery(ok=False, error=f"refused: {refused}", permanent=True)
        except OSError:
            return Delivery(ok=False, error="name resolution failed")
        assert target.host is not None  # _vet refuses a URL without one
        connector = aiohttp.TCPConnector(
            resolver=PinnedResolver(target.host, addresses),
            use_dns_cache=False,
            force_close=True,
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        ) as session:
            try:
                async with session.post(
                    target,
                    data=body,
                    headers={"Content-Type": "application/json", **headers},
                    allow_redirects=False,
                ) as response:
                    status = response.status
            except aiohttp.ClientError as error:
                return Delivery(ok=False, error=_connection_error(error))
        if 200 <= status < 300:
            return Delivery(ok=True, status=status)
        if 300 <= status < 400:
            return Delivery(
                ok=False, error=f"redirect {status} not followed", status=status
            )
        return Delivery(ok=False, error=f"http {status}", status=status)

    async def _vet(self, url: str) -> tuple[URL, list[IPAddress]]:
        try:
            target = URL(url)
        except (TypeError, ValueError):
            raise _Refused("not a valid URL") from None
        scheme = target.scheme.lower()
        allowed = {"https"} if self._require_https else {"http", "https"}
        if scheme not in allowed:
            raise _Refused("https required" if scheme == "http" else "not http(s)")
        if not target.host:
            raise _Refused("no host")
        if target.user is not None or target.password is not None:
            raise _Refused("credentials in the URL")
        addresses = await self._resolve(target.host, target.port or 0)
        if not addresses:
            raise _Refused("no address")
        if not self._allow_private and not all(map(is_public, addresses)):
            raise _Refused("address not public")
        return target, addresses

    @staticmethod
    async def _resolve(host: str, port: int) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )
        found: dict[IPAddress, None] = {}
        for _family, _type, _proto, _name, sockaddr in infos:
            address = _literal(str(sockaddr[0]).split("%", 1)[0])
            if address is None:
                raise _Refused("unparseable address")
            found[address] = None
        return list(found)


def _connection_error(error: aiohttp.ClientError) -> str:
    if isinstance(error, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return "tls failed"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connection failed"
    return f"connection failed ({type(error).__name__})"
