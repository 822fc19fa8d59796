"""One HTTP connection per VU, over aiohttp (default) or httpx, with k6-style error classes.

Why a VU owns its client: a pool shared by many coroutines serialises them on the pool's lock
(encode/httpx#3215, encode/httpcore#1035); the issue's own measurement on this kind of machine
was 354 req/s for one shared httpx client against 1,062 for a client per worker, and about
7,000 for aiohttp. ``bench/http_bench.py`` re-measures both clients in the worker.

Bodies arrive here already encoded (see :mod:`.flow`), so both clients send exactly the same
bytes and ``data_sent`` means the same thing for both.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

__all__ = [
    "ERROR_CLASSES",
    "AiohttpClient",
    "Client",
    "HttpxClient",
    "Reply",
    "RequestError",
    "make_client",
]

ERROR_CLASSES = ("timeout", "refused", "reset", "tls", "other")


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive mapping from the client
    body: bytes
    received: int  # approximate bytes on the wire: status line, headers and body


class RequestError(Exception):
    """A request that got no HTTP response; ``cls`` is one of :data:`ERROR_CLASSES`."""

    def __init__(self, cls: str, detail: str) -> None:
        super().__init__(detail)
        self.cls = cls


class Client(Protocol):
    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Reply: ...

    async def close(self) -> None: ...


def _header_bytes(headers: Mapping[str, str]) -> int:
    return sum(len(k) + len(v) + 4 for k, v in headers.items())


def _classify_os_error(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return "reset"
    return "other"


class AiohttpClient:
    """A ClientSession with a one-connection connector and its own cookie jar."""

    def __init__(self, *, insecure: bool = False) -> None:
        connector = aiohttp.TCPConnector(limit=1, ssl=not insecure, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # unsafe: keep cookies of IP-address hosts
            auto_decompress=True,
        )

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Reply:
        try:
            async with self.session.request(
                method,
                url,
                headers=dict(headers),
                data=body,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=True,
            ) as response:
                data = await response.read()
                received = 17 + _header_bytes(response.headers) + len(data)
                return Reply(response.status, response.headers, data, received)
        except asyncio.TimeoutError as exc:
            raise RequestError("timeout", f"no response within {timeout:g}s") from exc
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise RequestError("tls", str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            cls = _classify_os_error(exc.os_error)
            raise RequestError("refused" if cls == "other" else cls, str(exc)) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise RequestError("reset", str(exc) or type(exc).__name__) from exc
        except aiohttp.ClientOSError as exc:
            raise RequestError(_classify_os_error(exc), str(exc)) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise RequestError("other", str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self.session.close()


class HttpxClient:
    """An httpx.AsyncClient per VU, limited to one connection (the fair comparison)."""

    def __init__(self, *, insecure: bool = False) -> None:
        import httpx

        self._httpx = httpx
        self.client = httpx.AsyncClient(
            verify=not insecure,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=True,
        )

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Reply:
        httpx = self._httpx
        try:
            response = await self.client.request(
                method, url, headers=dict(headers), content=body, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise RequestError("timeout", f"no response within {timeout:g}s") from exc
        except httpx.ConnectError as exc:
            text = str(exc)
            cls = "tls" if "SSL" in text or "certificate" in text else "refused"
            raise RequestError(cls, text) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise RequestError("reset", str(exc) or type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise RequestError("other", str(exc) or type(exc).__name__) from exc
        data = response.content
        received = 17 + _header_bytes(response.headers) + len(data)
        return Reply(response.status_code, response.headers, data, received)

    async def close(self) -> None:
        await self.client.aclose()


def make_client(name: str, *, insecure: bool = False) -> Client:
    if name == "httpx":
        return HttpxClient(insecure=insecure)
    return AiohttpClient(insecure=insecure)
