"""Toxiproxy's HTTP API over a set of links, so existing Toxiproxy clients and experiments work.

Routes, JSON shapes and status codes are Toxiproxy 2.x's (``api.go``): ``GET/POST /proxies``
(201 on create, 409 when the name exists), ``GET/POST/PATCH/DELETE /proxies/{proxy}`` (204 on
delete, 404 when unknown), ``GET/POST /proxies/{proxy}/toxics`` (200 with the toxic, 409 on a
duplicate name), ``GET/POST/PATCH/DELETE /proxies/{proxy}/toxics/{toxic}``, ``POST /reset`` (204),
``POST /populate`` (201 with ``{"proxies": [...]}``) and ``GET /version``. Errors are
``{"error": "...", "status": N}``. Like Toxiproxy, a request whose User-Agent starts with
``Mozilla/`` is refused (403): a web page in a local browser must not be able to drive it.

The API drives a :class:`ProxyHost`. :class:`LinkSet` is the plain one (links in a dict, for
tests and the benchmark); inside a run, :mod:`console.net.kind` provides one that turns every
change into a fault with source ``api``, so it lands on the run's timeline.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from console.net.proxy import Link, parse_address
from console.net.toxics import Toxic, ToxicError, make_toxic, update_toxic

__all__ = ["VERSION", "ApiServer", "LinkSet", "ProxyHost"]

VERSION = "2.9.0-stressdeck"  # the Toxiproxy API level this follows


class ProxyHost(Protocol):
    """What the API reads and changes. Raise :class:`ToxicError` with Toxiproxy's status."""

    def proxies(self) -> Mapping[str, Link]: ...

    async def create(self, name: str, listen: str, upstream: str, enabled: bool) -> Link: ...

    async def delete(self, name: str) -> None: ...

    async def update(self, name: str, listen: str, upstream: str, enabled: bool) -> Link: ...

    async def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic: ...

    async def replace_toxic(self, proxy: str, toxic: Toxic) -> Toxic: ...

    async def remove_toxic(self, proxy: str, name: str) -> None: ...

    async def reset(self) -> None: ...


class LinkSet:
    """Links by name, changed directly: the :class:`ProxyHost` outside a run."""

    def __init__(self, seed: int | str = 0) -> None:
        self.links: dict[str, Link] = {}
        self.seed = seed

    def proxies(self) -> Mapping[str, Link]:
        return self.links

    def get(self, name: str) -> Link:
        link = self.links.get(name)
        if link is None:
            raise ToxicError("proxy not found", 404)
        return link

    async def create(self, name: str, listen: str, upstream: str, enabled: bool) -> Link:
        if name in self.links:
            raise ToxicError("proxy already exists", 409)
        link = _new_link(name, listen, upstream, enabled, self.seed)
        await link.start()
        self.links[name] = link
        return link

    async def delete(self, name: str) -> None:
        await self.get(name).stop()
        del self.links[name]

    async def update(self, name: str, listen: str, upstream: str, enabled: bool) -> Link:
        link = self.get(name)
        await reconfigure(link, listen, upstream, enabled)
        return link

    async def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        return self.get(proxy).add_toxic(toxic)

    async def replace_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        return self.get(proxy).replace_toxic(toxic)

    async def remove_toxic(self, proxy: str, name: str) -> None:
        self.get(proxy).remove_toxic(name)

    async def reset(self) -> None:
        for link in self.links.values():
            link.clear_toxics()
            await link.set_enabled(True)

    async def close(self) -> None:
        for link in self.links.values():
            await link.stop()


def _new_link(name: str, listen: str, upstream: str, enabled: bool, seed: int | str) -> Link:
    try:
        parse_address(upstream)
        return Link(name, upstream, listen or "127.0.0.1:0", enabled=enabled, seed=seed)
    except ValueError as exc:
        raise ToxicError(f"bad request body: {exc}") from None


async def reconfigure(link: Link, listen: str, upstream: str, enabled: bool) -> None:
    """Toxiproxy's proxy update: a new listen address or upstream restarts the listener."""
    try:
        listen_at = parse_address(listen) if listen else (link.listen_host, link.listen_port)
        if upstream != link.upstream:
            parse_address(upstream)
    except ValueError as exc:
        raise ToxicError(f"bad request body: {exc}") from None
    if listen_at != (link.listen_host, link.listen_port) or upstream != link.upstream:
        await link.stop()
        link.listen_host, link.listen_port = listen_at
        if upstream != link.upstream:
            link.set_upstream(upstream)
        if link.enabled:
            await link.start()
    if enabled != link.enabled:
        await link.set_enabled(enabled)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        return web.Response(text="User agent not allowed\n", status=403)
    try:
        return await handler(request)
    except ToxicError as exc:
        return _error(str(exc), exc.status)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            return _error(exc.reason.lower(), exc.status)
        raise


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ToxicError(f"bad request body: {exc}") from None


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ToxicError("bad request body: expected a JSON object")
    return value


class ApiServer:
    """Serves Toxiproxy's API for one :class:`ProxyHost` on a loopback address."""

    def __init__(self, host: ProxyHost, address: str = "127.0.0.1:8474") -> None:
        self.host = host
        self.bind_host, self.port = parse_address(address)
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[_guard])
        r = self.app.router
        r.add_post("/reset", self.reset)
        r.add_get("/version", self.version)
        r.add_get("/proxies", self.proxy_index)
        r.add_post("/proxies", self.proxy_create)
        r.add_post("/populate", self.populate)
        r.add_get("/proxies/{proxy}", self.proxy_show)
        r.add_post("/proxies/{proxy}", self.proxy_update)
        r.add_patch("/proxies/{proxy}", self.proxy_update)
        r.add_delete("/proxies/{proxy}", self.proxy_delete)
        r.add_get("/proxies/{proxy}/toxics", self.toxic_index)
        r.add_post("/proxies/{proxy}/toxics", self.toxic_create)
        r.add_get("/proxies/{proxy}/toxics/{toxic}", self.toxic_show)
        r.add_post("/proxies/{proxy}/toxics/{toxic}", self.toxic_update)
        r.add_patch("/proxies/{proxy}/toxics/{toxic}", self.toxic_update)
        r.add_delete("/proxies/{proxy}/toxics/{toxic}", self.toxic_delete)

    @property
    def address(self) -> str:
        return f"{self.bind_host}:{self.port}"

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.bind_host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])  # port 0 means "pick one"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ----- helpers -------------------------------------------------------------------------

    def _link(self, request: web.Request) -> Link:
        link = self.host.proxies().get(request.match_info["proxy"])
        if link is None:
            raise ToxicError("proxy not found", 404)
        return link

    def _toxic(self, request: web.Request) -> Toxic:
        toxic = self._link(request).toxics.get(request.match_info["toxic"])
        if toxic is None:
            raise ToxicError("toxic not found", 404)
        return toxic

    # ----- routes --------------------------------------------------------------------------

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps({"version": VERSION}) + "\n",
            content_type="application/json",
            charset="utf-8",
        )

    async def reset(self, request: web.Request) -> web.Response:
        await self.host.reset()
        return web.Response(status=204)

    async def proxy_index(self, request: web.Request) -> web.Response:
        return web.json_response({n: link.to_json() for n, link in self.host.proxies().items()})

    async def proxy_create(self, request: web.Request) -> web.Response:
        data = _object(await _body(request))
        name, upstream = data.get("name"), data.get("upstream")
        if not isinstance(name, str) or not name:
            raise ToxicError("missing required field: name")
        if not isinstance(upstream, str) or not upstream:
            raise ToxicError("missing required field: upstream")
        link = await self.host.create(
            name, str(data.get("listen") or ""), upstream, bool(data.get("enabled", True))
        )
        return web.json_response(link.to_json(), status=201)

    async def populate(self, request: web.Request) -> web.Response:
        data = await _body(request)
        if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
            raise ToxicError("bad request body: expected a JSON array of proxies")
        for i, proxy in enumerate(data, start=1):
            for key in ("name", "upstream"):
                if not isinstance(proxy.get(key), str) or not proxy[key]:
                    raise ToxicError(f"missing required field: {key} at proxy {i}")
        done: list[Link] = []
        for proxy in data:
            name, listen, upstream = (
                proxy["name"],
                str(proxy.get("listen") or ""),
                proxy["upstream"],
            )
            enabled = bool(proxy.get("enabled", True))
            existing = self.host.proxies().get(name)
            if existing is not None and (
                upstream != existing.upstream or (listen and listen != existing.listen)
            ):
                await self.host.delete(name)
                existing = None
            if existing is None:
                done.append(await self.host.create(name, listen, upstream, enabled))
            else:
                done.append(await self.host.update(name, listen, upstream, enabled))
        return web.json_response({"proxies": [link.to_json() for link in done]}, status=201)

    async def proxy_show(self, request: web.Request) -> web.Response:
        return web.json_response(self._link(request).to_json())

    async def proxy_update(self, request: web.Request) -> web.Response:
        link = self._link(request)
        data = _object(await _body(request))
        listen = str(data.get("listen") or link.listen)
        upstream = str(data.get("upstream") or link.upstream)
        enabled = bool(data.get("enabled", link.enabled))
        link = await self.host.update(link.name, listen, upstream, enabled)
        return web.json_response(link.to_json())

    async def proxy_delete(self, request: web.Request) -> web.Response:
        await self.host.delete(self._link(request).name)
        return web.Response(status=204)

    async def toxic_index(self, request: web.Request) -> web.Response:
        return web.json_response([t.to_json() for t in self._link(request).toxics.values()])

    async def toxic_create(self, request: web.Request) -> web.Response:
        link = self._link(request)
        toxic = make_toxic(_object(await _body(request)))
        if toxic.name in link.toxics:
            raise ToxicError("toxic already exists", 409)
        return web.json_response((await self.host.add_toxic(link.name, toxic)).to_json())

    async def toxic_show(self, request: web.Request) -> web.Response:
        return web.json_response(self._toxic(request).to_json())

    async def toxic_update(self, request: web.Request) -> web.Response:
        link, toxic = self._link(request), self._toxic(request)
        changed = update_toxic(toxic, _object(await _body(request)))
        return web.json_response((await self.host.replace_toxic(link.name, changed)).to_json())

    async def toxic_delete(self, request: web.Request) -> web.Response:
        link, toxic = self._link(request), self._toxic(request)
        await self.host.remove_toxic(link.name, toxic.name)
        return web.Response(status=204)
