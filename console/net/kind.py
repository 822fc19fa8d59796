"""Links in a run: ``[[links]]`` tables, ``net.*`` faults, link panes and the Toxiproxy API.

A link is modelled as a session kind (``net``) so the engine's fault machinery applies
unchanged: a network fault is a ``fault_injected`` event with a source, a :class:`FaultRecord`,
a marker on sparklines, a line in ``stressdeck faults RUN``, re-injected by ``--replay``, and
``after = "net.down"`` recovery criteria work. Each link (or each per-session instance of one)
is a :class:`LinkSession` with its own pane.

How sessions go through a link: an SSH or HTTP group says ``via = "LINK"``. Once every kind's
sessions exist, :meth:`NetRuntime.attach` hands each such session a function giving the link's
listen address, and the link forwards to the session's real target (or the link's own
``upstream``). The session still names its real target: the SSH host-key check and the HTTP
``Host`` header refer to it, not to the proxy. ``per_session = true`` gives every session behind
the link its own instance (``wan#0``, ``wan#1``, ...) so a fault can hit some sessions only.

Fault parameters are in profile units (``latency = "200ms"``, stored as seconds) and become
Toxiproxy's integer attributes here; faults made through the API are translated back the same
way, so one record replays either way. A ``duration`` lifts the fault after that long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from console import units
from console.config import GroupConfig, opt
from console.errors import FaultNotApplicable
from console.metrics import MetricSpec, MetricType, Series
from console.net.api import ApiServer, reconfigure
from console.net.proxy import Link, parse_address
from console.net.toxics import STREAMS, TOXIC_TYPES, Toxic, ToxicError, make_toxic
from console.sessions.base import FaultSpec, KindRuntime, RunEnv, Session, SessionKind
from console.snapshot import FaultRecord, SessionSnapshot

__all__ = ["KIND", "LinkConfig", "LinkSession", "NetRuntime", "Routed", "toxic_params"]


@dataclass(frozen=True, kw_only=True)
class LinkConfig(GroupConfig):
    """One `[[links]]` table: a fault proxy on loopback in front of an upstream (see the
    README's "Network faults" section for what each toxic does)."""

    count: int = opt(
        1,
        doc="Not set by hand: 1, or with `per_session` the number of sessions behind the link.",
    )

    upstream: str = opt(
        "",
        doc='Where the link forwards: "host:port", or empty for the real target of the '
        "sessions that go through it (their embedded target too).",
    )
    listen: str = opt("127.0.0.1:0", doc="Loopback address to listen on; port 0 picks a free port.")
    per_session: bool = opt(
        False,
        doc="Give every session behind the link its own instance (`NAME#0`, `NAME#1`, ...), so "
        "a fault with `pick` or a session target hits some sessions only.",
    )
    api: str = opt(
        "",
        doc='Serve Toxiproxy\'s REST API on this loopback address ("127.0.0.1:8474"); off when '
        "empty. Any local process can then add, change and remove links and toxics.",
    )


class Routed(Protocol):
    """A session that can go through a link (SSH and HTTP sessions)."""

    id: str
    via: str

    def real_address(self) -> tuple[str, int]: ...

    def route(self, address: Callable[[], tuple[str, int]] | None) -> None: ...


# Toxic attributes as fault parameters: (unit in profiles, factor to Toxiproxy's integer unit)
_ATTRS: Mapping[str, Mapping[str, tuple[str, float]]] = {
    "latency": {"latency": ("duration", 1000.0), "jitter": ("duration", 1000.0)},
    "bandwidth": {"rate": ("int", 1.0)},
    "slow_close": {"delay": ("duration", 1000.0)},
    "timeout": {"timeout": ("duration", 1000.0)},
    "reset_peer": {"timeout": ("duration", 1000.0)},
    "slicer": {
        "average_size": ("int", 1.0),
        "size_variation": ("int", 1.0),
        "delay": ("duration", 1_000_000.0),  # microseconds, as Toxiproxy's slicer
    },
    "limit_data": {"bytes": ("size", 1.0)},
}
_COMMON = {"stream": "str", "toxicity": "float", "name": "str", "duration": "duration"}
_PARSE: Mapping[str, Callable[[Any], float]] = {
    "duration": units.parse_duration,
    "size": units.parse_size,
    "int": float,
}

_TOXIC_DOCS = {
    "latency": "Delay data by `latency` (± `jitter`), per chunk from when it arrived.",
    "bandwidth": "Limit throughput to `rate` KB/s (1 KB = 1000 bytes; 56 kbit = 7).",
    "slow_close": "Delay the close of a connection by `delay`.",
    "timeout": "Stop all data; close after `timeout`, or hold forever with 0 (a blackhole). "
    "Removing it closes the connections it held, as Toxiproxy does.",
    "reset_peer": "On the next data (after `timeout`), reset both legs with a TCP RST.",
    "slicer": "Cut data into pieces of about `average_size` bytes (± `size_variation`) with "
    "`delay` between them.",
    "limit_data": "Close a connection after `bytes` bytes have passed.",
}
_RECOVERS = {"timeout", "reset_peer", "limit_data"}

FAULTS: dict[str, FaultSpec] = {
    kind: FaultSpec(
        f"{doc} Options: `stream` (downstream, upstream or both), `toxicity` (share of "
        "connections, 0-1), `name`, `duration` (lift after).",
        {**{a: unit for a, (unit, _) in _ATTRS[kind].items()}, **_COMMON},
        recovers=kind in _RECOVERS,
    )
    for kind, doc in _TOXIC_DOCS.items()
}
FAULTS.update(
    {
        "down": FaultSpec(
            "Refuse new connections and drop open ones (Toxiproxy's enabled=false); back "
            "after `duration` if given.",
            {"duration": "duration"},
        ),
        "up": FaultSpec("Bring a link that is down back.", recovers=False),
        "remove": FaultSpec(
            "Remove the toxic `name` (with `stream = both`, the pair made under that name); "
            "every toxic when no name is given.",
            {"name": "str"},
            recovers=False,
        ),
        "reset": FaultSpec("Remove every toxic and bring the link up.", recovers=False),
        "create": FaultSpec(
            "Create a link named by the target (API: POST /proxies).",
            {"listen": "str", "upstream": "str", "enabled": "str"},
            recovers=False,
        ),
        "update": FaultSpec(
            "Change a link's `listen` or `upstream` (API: POST /proxies/NAME).",
            {"listen": "str", "upstream": "str"},
            recovers=False,
        ),
        "delete": FaultSpec("Delete a link (API: DELETE /proxies/NAME).", recovers=False),
    }
)

METRICS = (
    MetricSpec("net_connections", MetricType.COUNTER, "count", "Connections accepted by links."),
    MetricSpec("net_bytes_up", MetricType.COUNTER, "bytes", "Bytes links delivered upstream."),
    MetricSpec("net_bytes_down", MetricType.COUNTER, "bytes", "Bytes links delivered downstream."),
)


def toxic_params(toxic: Toxic) -> dict[str, Any]:
    """A toxic as fault parameters in profile units (what the API records and replay reads)."""
    params: dict[str, Any] = {
        "name": toxic.name,
        "stream": toxic.stream,
        "toxicity": toxic.toxicity,
    }
    for attr, (unit, factor) in _ATTRS[toxic.type].items():
        value = toxic.attr(attr)
        params[attr] = value / factor if unit == "duration" else value
    return params


def _toxics_from(kind: str, params: Mapping[str, Any]) -> list[Toxic]:
    attributes: dict[str, int] = {}
    for attr, (unit, factor) in _ATTRS[kind].items():
        raw = params.get(attr, 0)
        value = raw if isinstance(raw, (int, float)) else _PARSE[unit](raw)
        attributes[attr] = round(float(value) * factor)
    stream = str(params.get("stream", "downstream"))
    streams = STREAMS if stream == "both" else (stream,)
    toxics = []
    for each in streams:
        data: dict[str, Any] = {"type": kind, "stream": each, "attributes": attributes}
        if "toxicity" in params:
            data["toxicity"] = float(params["toxicity"])
        if params.get("name"):
            data["name"] = str(params["name"]) + ("_" + each if len(streams) > 1 else "")
        try:
            toxics.append(make_toxic(data))
        except ToxicError as exc:
            raise FaultNotApplicable(f"net.{kind}: {exc}") from None
    return toxics


class LinkSession(Session):
    """One link (or one per-session instance of it) as a pane: counters, throughput, toxics."""

    kind = "net"

    def __init__(self, ctx: Any, link: Link, *, behind: Sequence[str] = ()) -> None:
        super().__init__(ctx, target=f"{link.listen} → {link.upstream}")
        self.link = link
        self.behind = tuple(behind)  # ids of the sessions that go through this link
        self.series = {"KB/s down": Series(120), "KB/s up": Series(120)}
        self.deleted = False
        self._stop = asyncio.Event()
        self._last = (0, 0, 0)
        self._lifts: dict[str, asyncio.TimerHandle] = {}  # toxic name or "down" -> lift timer

    async def run(self) -> None:
        self.state = "running" if self.link.enabled else "down"
        await self._stop.wait()

    async def stop(self) -> None:
        for handle in self._lifts.values():
            handle.cancel()
        await self.link.stop()
        self.state = "stopped"
        self._stop.set()

    def sample(self) -> None:
        stats = self.link.stats()
        seconds = self.seconds_since_sample()
        conns, up, down = stats.connections_total, stats.bytes_up, stats.bytes_down
        last_conns, last_up, last_down = self._last
        self.series["KB/s down"].push((down - last_down) / 1000 / seconds)
        self.series["KB/s up"].push((up - last_up) / 1000 / seconds)
        for metric, delta in (
            ("net_connections", conns - last_conns),
            ("net_bytes_up", up - last_up),
            ("net_bytes_down", down - last_down),
        ):
            if delta:
                self.ctx.add(metric, delta)
        self._last = (conns, up, down)

    def view(self) -> SessionSnapshot:
        stats = self.link.stats()
        toxics = tuple(t.describe() for t in self.link.toxics.values())
        state = "deleted" if self.deleted else ("down" if not self.link.enabled else self.state)
        return self.make_view(
            target=f"{self.link.listen} → {self.link.upstream}",
            state=state,
            badges=toxics,
            series=self.series_views({"KB/s down": "KB/s", "KB/s up": "KB/s"}),
            counters=(
                ("conns", f"{stats.connections_open}/{stats.connections_total}"),
                ("down", units.format_bytes(stats.bytes_down)),
                ("up", units.format_bytes(stats.bytes_up)),
                ("toxics", str(len(toxics))),
            ),
            details=(
                ("listen", self.link.listen),
                ("upstream", self.link.upstream),
                ("enabled", str(self.link.enabled)),
                ("connections open", str(stats.connections_open)),
                ("connections total", str(stats.connections_total)),
                ("bytes up", str(stats.bytes_up)),
                ("bytes down", str(stats.bytes_down)),
                ("behind", ", ".join(self.behind) or "-"),
                *((t.name, t.describe()) for t in self.link.toxics.values()),
            ),
            actions=tuple(f"net.{a}" for a in FAULTS),
        )

    # ----- faults --------------------------------------------------------------------------

    async def inject(self, action: str, params: Mapping[str, Any], fault: FaultRecord) -> None:
        if self.deleted:
            raise FaultNotApplicable(f"link {self.id} was deleted")
        link = self.link
        lift = params.get("duration")
        if action in TOXIC_TYPES:
            for toxic in _toxics_from(action, params):
                if toxic.name in link.toxics:
                    link.replace_toxic(toxic)
                else:
                    link.add_toxic(toxic)
                self._lift_later(toxic.name, lift, fault)
        elif action == "down":
            await link.set_enabled(False)
            self._lift_later("down", lift, fault)
        elif action == "up":
            self._cancel_lift("down")
            await link.set_enabled(True)
            self._back()
        elif action == "remove":
            name = str(params.get("name") or "")
            # "NAME" also removes the pair NAME_upstream / NAME_downstream that stream=both made
            names = [
                n for n in (name, f"{name}_upstream", f"{name}_downstream") if n in link.toxics
            ]
            if name and not names:
                raise FaultNotApplicable(f"{self.id} has no toxic {name!r}")
            for each in names if name else list(link.toxics):
                self._cancel_lift(each)
                link.remove_toxic(each)
        elif action == "reset":
            for key in list(self._lifts):
                self._cancel_lift(key)
            link.clear_toxics()
            await link.set_enabled(True)
        elif action == "update":
            try:
                await reconfigure(
                    link,
                    str(params.get("listen") or link.listen),
                    str(params.get("upstream") or link.upstream),
                    link.enabled,
                )
            except ToxicError as exc:
                raise FaultNotApplicable(str(exc)) from None
        elif action == "delete":
            await self.stop()
            self.deleted = True
        elif action != "create":  # create: made by NetRuntime.prepare, nothing more to do
            raise FaultNotApplicable(f"{self.id} does not accept net.{action}")
        self.state = "running" if link.enabled else "down"

    def _back(self) -> None:
        """A link with no session behind it is what a fault on it awaits: up again is back."""
        if not self.behind:
            self.ctx.recovered()

    def _lift_later(self, key: str, seconds: Any, fault: FaultRecord) -> None:
        self._cancel_lift(key)
        if seconds is None:
            return
        delay = (
            float(seconds) if isinstance(seconds, (int, float)) else units.parse_duration(seconds)
        )
        loop = asyncio.get_running_loop()
        self._lifts[key] = loop.call_later(delay, lambda: loop.create_task(self._lift(key, fault)))

    def _cancel_lift(self, key: str) -> None:
        handle = self._lifts.pop(key, None)
        if handle is not None:
            handle.cancel()

    async def _lift(self, key: str, fault: FaultRecord) -> None:
        self._lifts.pop(key, None)
        if key == "down":
            await self.link.set_enabled(True)
            self.state = "running"
            self._back()
        else:
            try:
                self.link.remove_toxic(key)
            except ToxicError:
                return  # removed meanwhile
        self.ctx.event(
            "net_fault_lifted",
            f"{fault.action} ({key}) lifted after its duration",
            data={"fault_id": fault.id, "what": key},
        )


class NetRuntime(KindRuntime):
    """Every link of a run, the sessions behind them, and (when asked for) the API."""

    def __init__(self, configs: Sequence[LinkConfig], env: RunEnv) -> None:
        super().__init__([])
        self.configs = list(configs)
        self.env = env
        self.links: dict[str, LinkSession] = {}  # name -> the link the API sees
        self.by_session: dict[str, LinkSession] = {}  # routed session id -> its link
        self.api: ApiServer | None = None
        self._made = 0

    def _make(self, name: str, sid: str, upstream: Any, listen: str, **kw: Any) -> LinkSession:
        link = Link(sid, upstream, listen, seed=f"{self.env.seed}:{sid}")
        ctx = self.env.context(sid, "net", name, link.listen)
        session = LinkSession(ctx, link, **kw)
        self.sessions.append(session)
        return session

    def attach(self, sessions: Mapping[str, Session]) -> None:
        routed: dict[str, list[Routed]] = {}
        for session in sessions.values():
            via = getattr(session, "via", "")
            if via:
                routed.setdefault(via, []).append(session)  # type: ignore[arg-type]
        for config in self.configs:
            behind = routed.get(config.name, [])
            if config.per_session and behind:
                host, _ = parse_address(config.listen)
                for i, routed_session in enumerate(behind):
                    upstream = config.upstream or routed_session.real_address
                    link = self._make(
                        config.name,
                        f"{config.name}#{i}",
                        upstream,
                        f"{host}:0",
                        behind=(routed_session.id,),
                    )
                    self._route(routed_session, link)
            else:
                upstream = config.upstream or (behind[0].real_address if behind else "127.0.0.1:1")
                link = self._make(
                    config.name,
                    config.name,
                    upstream,
                    config.listen,
                    behind=tuple(s.id for s in behind),
                )
                self.links[config.name] = link
                for routed_session in behind:
                    self._route(routed_session, link)

    def _route(self, session: Routed, link: LinkSession) -> None:
        self.by_session[session.id] = link
        self.links.setdefault(link.id, link)
        port = link.link

        def address() -> tuple[str, int]:
            return port.listen_host, port.listen_port

        session.route(address)

    async def start(self) -> None:
        for session in self.sessions:
            await session.link.start()  # type: ignore[attr-defined]
            session.target = f"{session.link.listen} → {session.link.upstream}"  # type: ignore[attr-defined]
            session.ctx.host = session.link.listen  # type: ignore[attr-defined]
        api = next((c.api for c in self.configs if c.api), "")
        if api:
            self.api = ApiServer(_RunHost(self), api)
            await self.api.start()
            self.env.services.log_event(
                self.env.services.make_event(
                    "net_api_listening",
                    session_id=None,
                    host=None,
                    kind="net",
                    detail=f"Toxiproxy API on http://{self.api.address}",
                    data={"address": self.api.address},
                )
            )

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.stop()
        for session in self.sessions:
            await session.link.stop()  # type: ignore[attr-defined]

    # ----- targets -------------------------------------------------------------------------

    def resolve(self, target: str) -> list[Session]:
        """A link name, a link instance, or a session (group) behind a link."""
        live = [s for s in self.sessions if not getattr(s, "deleted", False)]
        if target == "all":
            return live
        chosen = [s for s in live if s.ctx.group == target or s.id == target]
        if chosen:
            return chosen
        found: dict[str, Session] = {}
        for sid, link in self.by_session.items():
            group = sid.partition("#")[0]
            if target in (sid, group) and not link.deleted:
                found[link.id] = link
        return list(found.values())

    def reach(self, targets: Sequence[Session]) -> tuple[str, ...]:
        """The links hit, and the sessions behind them (whose recovery a criterion awaits)."""
        ids: list[str] = []
        for link in targets:
            behind = getattr(link, "behind", ())
            ids.extend(behind or (link.id,))
        return tuple(dict.fromkeys(ids))

    async def prepare(self, action: str, target: str, params: Mapping[str, Any]) -> None:
        """``net.create`` makes the link it names (from the API, or replayed)."""
        if action != "create" or target in self.links:
            return
        upstream = str(params.get("upstream", ""))
        try:
            parse_address(upstream)
            listen = str(params.get("listen") or "127.0.0.1:0")
            host, _ = parse_address(listen)
        except ValueError as exc:
            raise FaultNotApplicable(f"net.create: {exc}") from None
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise FaultNotApplicable("net.create: links listen on loopback only")
        self._made += 1
        taken = {s.id for s in self.sessions}
        sid = target if target not in taken else f"{target}~{self._made}"
        link = self._make(target, sid, upstream, listen)
        link.link.enabled = str(params.get("enabled", "true")).lower() != "false"
        self.links[target] = link
        await link.link.start()
        link.ctx.host = link.link.listen
        self.env.services.add_session(link)

    def reached(self, action: str, link: Session) -> None:
        """A link's fault disrupts the sessions behind it too; a deleted link frees its name."""
        link.mark_fault()
        for sid in getattr(link, "behind", ()):
            behind = self.env.services.session(sid)
            if behind is not None:
                behind.mark_fault()
        if action == "delete":
            self.links.pop(link.ctx.group, None)


class _RunHost:
    """The API's view of a run: every change goes through the engine as a fault (source api)."""

    def __init__(self, runtime: NetRuntime) -> None:
        self.runtime = runtime

    def proxies(self) -> Mapping[str, Link]:
        return {name: s.link for name, s in self.runtime.links.items() if not s.deleted}

    async def _inject(self, action: str, target: str, params: Mapping[str, Any]) -> None:
        try:
            await self.runtime.env.services.inject(
                f"net.{action}", target=target, params=dict(params), source="api"
            )
        except FaultNotApplicable as exc:
            raise ToxicError(str(exc), 400) from None

    async def create(self, name: str, listen: str, upstream: str, enabled: bool) -> Link:
        if name in self.proxies():
            raise ToxicError("proxy already exists", 409)
        params = {"listen": listen or "127.0.0.1:0", "upstream": upstream}
        if not enabled:
            params["enabled"] = "false"
        await self._inject("create", name, params)
        return self.runtime.links[name].link

    async def delete(self, name: str) -> None:
        await self._inject("delete", name, {})

    async def update(self, name: str, listen: str, upstream: str, enabled: bool) -> Link:
        link = self.proxies()[name]
        if (listen and listen != link.listen) or upstream != link.upstream:
            await self._inject("update", name, {"listen": listen, "upstream": upstream})
        if enabled != link.enabled:
            await self._inject("up" if enabled else "down", name, {})
        return link

    async def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        await self._inject(toxic.type, proxy, toxic_params(toxic))
        return self.proxies()[proxy].toxics[toxic.name]

    async def replace_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        return await self.add_toxic(proxy, toxic)

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._inject("remove", proxy, {"name": name})

    async def reset(self) -> None:
        if self.runtime.links:
            await self._inject("reset", "all", {})


def create(configs: Sequence[LinkConfig], env: RunEnv) -> NetRuntime:
    return NetRuntime(configs, env)


def figures(snapshot: Any) -> dict[str, Any]:
    def count(metric: str) -> int:
        found = snapshot.metric(metric)
        return int(found.get("count") or 0) if found else 0

    return {
        "net_connections": count("net_connections"),
        "net_bytes_up": count("net_bytes_up"),
        "net_bytes_down": count("net_bytes_down"),
    }


KIND = SessionKind(
    name="net",
    config_type=LinkConfig,
    metrics=METRICS,
    faults=FAULTS,
    create=create,
    figures=figures,
)
