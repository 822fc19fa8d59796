"""One HTTP connection per VU, over aiohttp (default) or httpx, with k6-style error classes.

Why a VU owns its client: a pool shared by many coroutines serialises them on the pool's lock
(encode/httpx#3215, encode/httpcore#1035); the issue's own measurement on this kind of machine
was 354 req/s for one shared httpx client against 1,062 for a client per worker, and about
7,000 for aiohttp. ``bench/http_bench.py`` re-measures both clients in the worker.

Bodies arrive here already encoded (see :mod:`.flow`), so both clients send exactly the same
bytes and ``data_sent`` means the same thing for both.

Response bodies are bounded: each client keeps at most ``max_body`` bytes of a body (default
:data:`DEFAULT_MAX_BODY`, never more than :data:`MAX_BODY_LIMIT`) for checks and captures, and
reads the rest in chunks that are counted (``received`` stays exact) and dropped, so one huge
response cannot grow a worker by its size. A reply that was cut says so in ``truncated``.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx

from console.errors import RequestError
from console.sessions.http.config import DEFAULT_MAX_BODY, MAX_BODY_LIMIT

__all__ = [
    "ERROR_CLASSES",
    "AiohttpClient",
    "AiohttpTransport",
    "Client",
    "HttpxClient",
    "Reply",
    "RequestError",
    "make_client",
]

ERROR_CLASSES = ("timeout", "refused", "reset", "tls", "other")
_CHUNK = 64 * 1024


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive mapping from the client
    body: bytes  # at most the client's max_body bytes of the body
    received: int  # approximate bytes on the wire: status line, headers and the whole body
    truncated: bool = False  # the body was longer than max_body: only its start is kept


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


class _Body:
    """Keeps the first ``cap`` bytes of a body fed in chunks and counts all of them."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.size > len(self.kept)


def _cap(max_body: int) -> int:
    return max(0, min(int(max_body), MAX_BODY_LIMIT))


class AiohttpClient:
    """A ClientSession with a one-connection connector and its own cookie jar."""

    def __init__(self, *, insecure: bool = False, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.max_body = _cap(max_body)
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
                kept = _Body(self.max_body)
                async for chunk in response.content.iter_chunked(_CHUNK):
                    kept.feed(chunk)
                received = 17 + _header_bytes(response.headers) + kept.size
                return Reply(
                    response.status, response.headers, bytes(kept.kept), received, kept.truncated
                )
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
    """An httpx.AsyncClient per VU, limited to one connection (the fair comparison).

    With ``over_aiohttp`` the client keeps httpx's API and cookie handling but sends through
    :class:`AiohttpTransport`, which isolates what httpx itself costs from what its
    connection pool (httpcore) costs; ``bench/http_bench.py`` measures all three.
    """

    def __init__(
        self,
        *,
        insecure: bool = False,
        over_aiohttp: bool = False,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.max_body = _cap(max_body)
        transport = AiohttpTransport(insecure=insecure) if over_aiohttp else None
        self.client = httpx.AsyncClient(
            verify=not insecure,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=True,
            transport=transport,
            # Traffic goes exactly where the profile says: a proxy variable in the environment
            # must never reroute loopback load (aiohttp's default, trust_env=False, agrees).
            trust_env=False,
        )

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Reply:
        try:
            async with self.client.stream(
                method, url, headers=dict(headers), content=body, timeout=timeout
            ) as response:
                kept = _Body(self.max_body)
                async for chunk in response.aiter_bytes(_CHUNK):
                    kept.feed(chunk)
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
        received = 17 + _header_bytes(response.headers) + kept.size
        return Reply(
            response.status_code, response.headers, bytes(kept.kept), received, kept.truncated
        )

    async def close(self) -> None:
        await self.client.aclose()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends over one aiohttp connection (httpx API, aiohttp speed)."""

    def __init__(self, *, insecure: bool = False) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, ssl=not insecure),
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            auto_decompress=False,  # httpx decodes, as with its own transport
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        total = max((v for v in timeouts.values() if v is not None), default=None)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            response = await self.session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=total),
            )
        except BaseException as exc:
            raise _httpx_error(exc, request) from exc
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        # The body is streamed through, not read here: the client above bounds what it keeps.
        stream = _AiohttpStream(response, request)
        return httpx.Response(response.status, headers=raw, stream=stream, request=request)

    async def aclose(self) -> None:
        await self.session.close()


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self.response = response
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.content.iter_chunked(_CHUNK):
                yield chunk
        except BaseException as exc:
            raise _httpx_error(exc, self.request) from exc

    async def aclose(self) -> None:
        self.response.release()


def _httpx_error(exc: BaseException, request: httpx.Request) -> BaseException:
    """An aiohttp failure as the httpx error its own transport would raise."""
    if isinstance(exc, asyncio.TimeoutError):
        return httpx.ReadTimeout("timed out", request=request)
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        return httpx.ConnectError(f"SSL: {exc}", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return httpx.TransportError(str(exc), request=request)
    return exc  # cancellation and anything else pass through unchanged


def make_client(name: str, *, insecure: bool = False, max_body: int = DEFAULT_MAX_BODY) -> Client:
    if name == "raw":
        from console.sessions.http.raw import RawClient  # it imports this module

        return RawClient(insecure=insecure, max_body=_cap(max_body))
    if name == "httpx":
        return HttpxClient(insecure=insecure, max_body=max_body)
    if name == "httpx-aiohttp":
        return HttpxClient(insecure=insecure, over_aiohttp=True, max_body=max_body)
    return AiohttpClient(insecure=insecure, max_body=max_body)
