"""The lean client: HTTP/1.1 over one keep-alive connection, an asyncio Protocol and no more.

Why it exists: profiling a worker against nginx on loopback (issue 12) put about 45% of its
time in aiohttp's own request and response machinery (ClientSession._request, the request and
response objects, its stream reader, timers), against about 10% for the flow and the metrics.
A request here is one ``transport.write`` of a pre-encoded head and one future that the
protocol resolves when the response is complete.

What it does itself: plain ``http://``, keep-alive (one retry on a fresh connection when a
reused one turns out closed before any byte of the response, idempotent methods only),
``Content-Length``, chunked and read-until-close bodies, gzip/deflate decoding, a total
timeout, and the error classes of :mod:`.client`. ``data_received`` counts the bytes that
really arrived (status line, headers and body as sent).

What it hands to the VU's own aiohttp session, created on first need: ``https://`` URLs;
every request after a response set a cookie (the cookie is put in that session's jar first,
so the VU keeps its cookies, as with aiohttp alone); and following a redirect. A flow that
never needs them never creates the session.
"""

from __future__ import annotations

import asyncio
import errno
import zlib
from collections.abc import Iterator, Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote, urljoin, urlsplit

from console.sessions.http.client import AiohttpClient, Reply, RequestError
from console.sessions.http.config import DEFAULT_MAX_BODY

__all__ = ["RawClient", "RawHeaders"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULTS = {  # what aiohttp sends when a profile does not say
    "accept": "Accept: */*\r\n",
    "accept-encoding": "Accept-Encoding: gzip, deflate\r\n",
    "user-agent": "User-Agent: stressdeck\r\n",
}
_SAFE = "!$%&'()*+,/:;=?@[]~"  # kept as written in a request target
_MAX_HEAD = 1 << 16  # a response head larger than this is not HTTP we want to parse


class RawHeaders(Mapping[str, str]):
    """Response headers, case-insensitive; parsed only when a check or capture reads them."""

    __slots__ = ("_block", "_parsed")

    def __init__(self, block: bytes) -> None:
        self._block = block  # the header lines, without the status line
        self._parsed: dict[str, str] | None = None

    def _items(self) -> dict[str, str]:
        parsed = self._parsed
        if parsed is None:
            parsed = {}
            for line in self._block.decode("latin-1").split("\r\n"):
                name, sep, value = line.partition(":")
                if not sep:
                    continue
                key = name.strip().lower()
                value = value.strip()
                parsed[key] = f"{parsed[key]}, {value}" if key in parsed else value
            self._parsed = parsed
        return parsed

    def __getitem__(self, key: str) -> str:
        return self._items()[key.lower()]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._items().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def getall(self, key: str) -> list[str]:
        """Every value of a repeated header (Set-Cookie), in order."""
        key = key.lower()
        found = []
        for line in self._block.decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() == key:
                found.append(value.strip())
        return found


def _field(lower: bytes, head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case, with its leading CRLF) in a response head.

    Every header line follows the status line's CRLF, so a search of the lowered head for
    ``b"\r\ncontent-length:"`` finds exactly that header; ``head`` gives the original case.
    """
    at = lower.find(name)
    if at < 0:
        return None
    start = at + len(name)
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


class _Response:
    """What the protocol hands back: status, header block, body and the bytes on the wire."""

    __slots__ = (
        "block",
        "body",
        "close",
        "cookies",
        "encoding",
        "received",
        "redirect",
        "status",
        "truncated",
    )

    def __init__(self) -> None:
        self.cookies = False
        self.redirect = False
        self.status = 0
        self.block = b""
        self.body = b""
        self.received = 0
        self.close = False
        self.encoding = b""
        self.truncated = False  # the body was longer than max_body: only its start is kept


class _Protocol(asyncio.Protocol):
    """One connection; parses one response at a time into the waiting future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int) -> None:
        self.loop = loop
        self.max_body = max_body  # body bytes kept; the rest is counted and dropped
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[_Response] | None = None
        self.head_only = False  # a HEAD request: no body follows whatever the headers say
        self.buf = bytearray()
        self.response: _Response | None = None
        self.mode = 0  # 0 head, 1 content-length, 2 chunked, 3 until close
        self.remaining = 0
        self.chunks: list[bytes] = []  # the body kept so far (chunked and until-close bodies)
        self.kept = 0
        self.crlf = False  # a chunk's data is done: its CRLF comes next
        self.got_bytes = False
        self.closed = False
        self.lost: BaseException | None = None
        self.interim = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.lost = exc
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        response = self.response
        if response is not None and self.mode == 3:  # the body ends with the connection
            response.body = b"".join(self.chunks)
            response.close = True
            self._finish(response)
            return
        waiter.set_exception(ConnectionResetError(errno.ECONNRESET, str(exc or "closed")))

    def start(self, waiter: asyncio.Future[_Response], head_only: bool) -> None:
        self.waiter = waiter
        self.head_only = head_only
        self.response = None
        self.mode = 0
        self.buf.clear()
        self.chunks = []
        self.kept = 0
        self.crlf = False
        self.got_bytes = False

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        response = self.response
        if response is not None:
            response.received += len(data)
        if self.mode == 0:
            if self.buf:
                self.buf += data
                data = bytes(self.buf)
                self.buf.clear()
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > _MAX_HEAD:
                    self._fail(ValueError("response head too large"))
                    return
                self.buf += data
                return
            self._head(data[:end], len(data))
            data = data[end + 4 :]
            response = self.response
            if response is None:
                if self.interim and data:  # 100 Continue and the like: parse what follows
                    self.interim = False
                    self.data_received(data)
                return
        assert response is not None
        if self.mode == 1:
            if not self.chunks and len(data) == self.remaining <= self.max_body:
                response.body = data  # the common case: all at once, nothing to copy
                self.remaining = 0
                self._finish(response)
                return
            take = data[: self.remaining]
            self.remaining -= len(take)
            self._keep(response, take)
            if self.remaining == 0:
                response.body = b"".join(self.chunks)
                self._finish(response)
        elif self.mode == 2:
            self.buf += data
            self._chunked(response)
        elif self.mode == 3:
            self._keep(response, data)

    def _keep(self, response: _Response, data: bytes | bytearray) -> None:
        """Keep body bytes up to ``max_body``; beyond it they are only counted (``received``)."""
        room = self.max_body - self.kept
        if len(data) > room:
            response.truncated = True
            data = data[: max(room, 0)]
        if data:
            self.chunks.append(bytes(data))
            self.kept += len(data)

    def _head(self, head: bytes, arrived: int) -> None:
        line_end = head.find(b"\r\n")
        status_line = head if line_end < 0 else head[:line_end]
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            self._fail(ValueError(f"not an HTTP response: {status_line[:60]!r}"))
            return
        response = _Response()
        response.status = status = int(parts[1])
        response.block = b"" if line_end < 0 else head[line_end + 2 :]
        response.received = arrived
        lower = head.lower()
        connection = _field(lower, head, b"\r\nconnection:")
        if parts[0] == b"HTTP/1.0":
            response.close = connection is None or connection.lower() != b"keep-alive"
        else:
            response.close = connection is not None and connection.lower() == b"close"
        if b"\r\ncontent-encoding:" in lower:
            encoding = _field(lower, head, b"\r\ncontent-encoding:")
            response.encoding = encoding.lower() if encoding else b""
        response.cookies = b"\r\nset-cookie:" in lower
        response.redirect = status in _REDIRECTS and b"\r\nlocation:" in lower
        self.response = response
        if self.head_only or status < 200 or status in (204, 304):
            self.mode = 1
            self.remaining = 0
            if status < 200 and status != 101:  # an interim response: the real one follows
                self.mode = 0
                self.response = None
                self.interim = True
            return
        te = _field(lower, head, b"\r\ntransfer-encoding:")
        if te is not None and b"chunked" in te.lower():
            self.mode = 2
            self.remaining = 0
            return
        length = _field(lower, head, b"\r\ncontent-length:")
        if length is not None:
            try:
                self.remaining = int(length)
            except ValueError:
                self._fail(ValueError(f"bad Content-Length {length[:30]!r}"))
                return
            self.mode = 1
            return
        self.mode = 3
        response.close = True

    def _chunked(self, response: _Response) -> None:
        buf = self.buf
        while True:
            if self.remaining > 0:  # inside a chunk: take what has come, however little
                n = min(len(buf), self.remaining)
                if n == 0:
                    return
                self._keep(response, buf[:n])
                del buf[:n]
                self.remaining -= n
                self.crlf = self.remaining == 0
                continue
            if self.crlf:  # the CRLF after a chunk's data
                if len(buf) < 2:
                    return
                del buf[:2]
                self.crlf = False
                continue
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size_text = bytes(buf[:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                self._fail(ValueError(f"bad chunk size {size_text[:20]!r}"))
                return
            if size == 0:  # the last chunk, then optional trailers and an empty line
                if buf.find(b"\r\n\r\n", line_end) < 0:
                    return
                buf.clear()
                response.body = b"".join(self.chunks)
                self._finish(response)
                return
            del buf[: line_end + 2]
            self.remaining = size

    def _finish(self, response: _Response) -> None:
        self.mode = 0
        self.remaining = 0
        self.response = None
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


def _decode(body: bytes, encoding: bytes) -> bytes:
    if encoding in (b"gzip", b"x-gzip"):
        return zlib.decompress(body, 47)  # 32 + 15: a gzip or zlib header, detected
    if encoding == b"deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -15)  # raw deflate, as some servers send it
    return body


class RawClient:
    """A VU's client: one keep-alive connection of its own, aiohttp for what it leaves out."""

    def __init__(self, *, insecure: bool = False, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.insecure = insecure
        self.max_body = max_body
        self.protocol: _Protocol | None = None
        self.origin: tuple[str, int] = ("", 0)
        self.fallback: AiohttpClient | None = None
        self.delegate = False  # after a cookie: the aiohttp session holds the jar now
        self._heads: dict[tuple[object, ...], tuple[bytes, tuple[str, int], str]] = {}

    def _aiohttp(self) -> AiohttpClient:
        if self.fallback is None:
            self.fallback = AiohttpClient(insecure=self.insecure, max_body=self.max_body)
        return self.fallback

    def _prepare(
        self, method: str, url: str, headers: Mapping[str, str]
    ) -> tuple[bytes, tuple[str, int], str]:
        """The request head up to the headers that vary (cached per method, URL and headers)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 80
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        # as yarl does for aiohttp: spaces and non-ASCII percent-encoded, escapes kept
        target = quote(target, safe=_SAFE)
        for text in (method, *headers, *headers.values()):
            if "\r" in text or "\n" in text:  # a captured value must not add a header
                raise ValueError(f"line break in a request header or method: {text[:40]!r}")
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        lower = {k.lower() for k in headers}
        if "host" not in lower:
            netloc = parts.netloc.rsplit("@", 1)[-1]
            lines.append(f"Host: {netloc}\r\n")
        lines.extend(text for name, text in _DEFAULTS.items() if name not in lower)
        lines.extend(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-length")
        return "".join(lines).encode("latin-1"), (host, port), parts.scheme

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Reply:
        if self.delegate or not url.startswith("http://"):
            return await self._aiohttp().request(method, url, headers, body, timeout)
        key = (method, url, tuple(headers.items()))
        prepared = self._heads.get(key)
        if prepared is None:
            prepared = self._prepare(method, url, headers)
            if len(self._heads) < 256:  # templated URLs vary per request: keep the cache bounded
                self._heads[key] = prepared
        head, origin, _scheme = prepared
        if body:
            data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        elif method in ("POST", "PUT", "PATCH"):
            data = head + b"Content-Length: 0\r\n\r\n"
        else:
            data = head + b"\r\n"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        response = await self._exchange(loop, origin, data, method, deadline, timeout)
        received = response.received
        content = response.body
        if response.encoding and content and not response.truncated:
            try:
                content = _decode(content, response.encoding)
            except zlib.error as exc:
                raise RequestError(
                    "reset", f"undecodable {response.encoding.decode()} body"
                ) from exc
        headers_out = RawHeaders(response.block)
        if response.cookies:
            self._keep_cookies(url, headers_out)
        status = response.status
        if response.redirect:
            return await self._redirect(
                status, method, url, headers, body, headers_out, deadline, received
            )
        return Reply(status, headers_out, content, received, response.truncated)

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: tuple[str, int],
        data: bytes,
        method: str,
        deadline: float,
        timeout: float,
    ) -> _Response:
        for attempt in (0, 1):
            protocol = self.protocol
            reused = protocol is not None and not protocol.closed and self.origin == origin
            if not reused:
                protocol = await self._connect(loop, origin, deadline, timeout)
            assert protocol is not None and protocol.transport is not None
            waiter: asyncio.Future[_Response] = loop.create_future()
            protocol.start(waiter, method == "HEAD")
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                protocol.transport.write(data)
                response = await waiter
            except asyncio.TimeoutError as exc:
                self._drop()
                raise RequestError("timeout", f"no response within {timeout:g}s") from exc
            except (ConnectionError, OSError) as exc:
                self._drop()
                if reused and attempt == 0 and not protocol.got_bytes and method in _IDEMPOTENT:
                    continue  # the server had closed the idle connection: once more, fresh
                raise RequestError("reset", str(exc) or type(exc).__name__) from exc
            except ValueError as exc:
                self._drop()
                raise RequestError("other", str(exc)) from exc
            except asyncio.CancelledError:
                self._drop()  # a response may still be on its way: the connection is unusable
                raise
            finally:
                timer.cancel()
            if response.close:
                self._drop()
            return response
        raise AssertionError("unreachable")

    async def _connect(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: tuple[str, int],
        deadline: float,
        timeout: float,
    ) -> _Protocol:
        self._drop()
        try:
            _transport, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Protocol(loop, self.max_body), origin[0], origin[1]
                ),
                max(deadline - loop.time(), 0.0),
            )
        except asyncio.TimeoutError as exc:
            raise RequestError("timeout", f"no response within {timeout:g}s") from exc
        except OSError as exc:
            code = exc.errno
            cls = (
                "reset"
                if code in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)
                else "refused"
            )
            raise RequestError(cls, f"cannot connect to {origin[0]}:{origin[1]}: {exc}") from exc
        self.protocol = protocol
        self.origin = origin
        return protocol

    def _drop(self) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is not None and protocol.transport is not None and not protocol.closed:
            protocol.transport.abort()

    def _keep_cookies(self, url: str, headers: RawHeaders) -> None:
        """Hand the VU over to its aiohttp session, with the cookies it was just given."""
        import yarl

        cookies: SimpleCookie = SimpleCookie()
        for value in headers.getall("set-cookie"):
            try:
                cookies.load(value)
            except CookieError:
                continue
        self._aiohttp().session.cookie_jar.update_cookies(cookies, yarl.URL(url))
        self.delegate = True
        self._drop()  # the aiohttp session opens its own connection

    async def _redirect(
        self,
        status: int,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        response_headers: RawHeaders,
        deadline: float,
        received: int,
    ) -> Reply:
        """Follow as aiohttp would (303, or 301/302 after a POST, become a body-less GET)."""
        location = response_headers.get("location") or ""
        target = urljoin(url, location)
        if method != "HEAD" and (status == 303 or (status in (301, 302) and method == "POST")):
            method, body = "GET", None
        send = dict(headers)
        if urlsplit(target)[:2] != urlsplit(url)[:2]:
            send = {k: v for k, v in send.items() if k.lower() != "authorization"}
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
        reply = await self._aiohttp().request(method, target, send, body, remaining)
        reply.received += received
        return reply

    async def close(self) -> None:
        self._drop()
        if self.fallback is not None:
            await self.fallback.close()


def _expire(waiter: asyncio.Future[_Response]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())
