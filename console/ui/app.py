"""The Stressdeck console: a thin Textual app over a run controller.

The engine runs in its own thread with its own asyncio loop (:mod:`console.controller`), so
drawing can never delay a fault or distort a reconnect time. The app only does three things:

* renders snapshots: the engine thread posts :class:`~console.ui.messages.SnapshotReady` at each
  publish (about 4 Hz); a newer one replaces a queued older one, and the app assigns it to a
  reactive inside ``batch_update`` so all widgets redraw in one frame;
* turns keys (declarative bindings, :mod:`console.ui.keys`) into controller commands, whose
  futures are awaited on the UI loop and reported with a notification;
* shows screens: session detail, the run's request tables, help, quit confirmation
  (:mod:`widgets`). What only one screen needs (a raw terminal, the request tables) is asked
  of the controller while that screen is open, never carried in every snapshot.

It never owns session logic. :func:`make_app` builds it (the tests reuse it) and
:func:`run_console` is the CLI's entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar, Protocol, TextIO, TypeVar

from textual import events
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.drivers.linux_driver import LinuxDriver
from textual.reactive import var
from textual.screen import ModalScreen

from console import verdicts
from console.bindings import APP_KEYS
from console.command_line import RUN_VERBS, complete, parse
from console.errors import ExitStatus, UsageError
from console.metrics import Trend
from console.net.presets import PRESETS, is_active, link_of, removal
from console.profile import Profile
from console.replay import ReplayFault
from console.snapshot import FaultRecord, RunSnapshot, RunTables, SessionSnapshot
from console.ui.commands import KeyTableCommands
from console.ui.driver import HangupSafeDriver, detach_from_terminal
from console.ui.keys import APP_BINDINGS
from console.ui.messages import SessionFocused, SessionOpened, SnapshotReady
from widgets import (
    CommandLineScreen,
    ConfirmScreen,
    ConsoleStatsPanel,
    CriteriaPanel,
    EventLogPanel,
    FaultsPanel,
    HelpScreen,
    KeyFooter,
    KeyHelp,
    NetMenuScreen,
    QuitScreen,
    RequestsScreen,
    RunHeader,
    SessionDetailScreen,
    SessionGrid,
)
from widgets.header import clock_text

__all__ = ["Controller", "StressdeckApp", "closing_text", "make_app", "run_console"]

T = TypeVar("T")

UI_STATS_ENV = "STRESSDECK_UI_STATS"  # path: the app writes its UI loop lag there at exit
LAG_INTERVAL = 0.1
VERB_ALIASES = {"restart": ("restart", "reconnect")}
BULK_CONFIRM = ("kill", "drop", "restart")  # alt+k, D, R: every session at once
MAIN_SCREEN_ACTIONS = {
    "command_line",
    "search",
    "net_menu",
    "fault",
    "fault_all",
    "hang",
    "hang_all",
    "rate",
    "pause",
    "export",
    "remove_node",
    "detail",
    "requests",
}


class Controller(Protocol):
    """What the console needs from :class:`console.controller.RunController`."""

    def start(self) -> None: ...
    def start_warnings(self) -> list[str]: ...
    def latest(self) -> RunSnapshot | None: ...
    def subscribe(self, callback: Callable[[RunSnapshot], None]) -> None: ...
    def inject(
        self,
        action: str,
        target: str = "all",
        params: dict[str, Any] | None = None,
        pick: int | None = None,
        source: str = "key",
    ) -> Future[FaultRecord]: ...
    def pause(self) -> Future[None]: ...
    def resume(self) -> Future[None]: ...
    def export(self) -> Future[list[Path]]: ...
    def toggle_chaos(self) -> Future[bool]: ...
    def remove_node(self, target: str = "") -> Future[str]: ...
    def screen(self, session_id: str) -> Future[bytes]: ...
    def tables(self) -> Future[RunTables]: ...
    def stop(self, *, interrupted: bool = False) -> Future[Any]: ...
    def result(self, timeout: float | None = None) -> Any: ...


class StressdeckApp(App[int]):
    """The console. Without a controller it shows a fixed snapshot (snapshot tests, demos)."""

    CSS_PATH = "app.tcss"
    TITLE = "Stressdeck"
    BINDINGS: ClassVar[list[BindingType]] = list(APP_BINDINGS)
    COMMANDS = App.COMMANDS | {KeyTableCommands}  # every key-table action, found by name
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012
    AUTO_FOCUS = "#grid"

    # a var, not a reactive: a reactive on the App repaints the whole screen on every change
    snapshot: var[RunSnapshot | None] = var(None, always_update=True, init=False)

    def __init__(
        self,
        *,
        controller: Controller | None = None,
        snapshot: RunSnapshot | None = None,
        keymap: Mapping[str, str] | None = None,
        show_log: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        freeze_gc: bool = False,
        confirm_bulk: bool = True,
    ) -> None:
        super().__init__()
        self._confirm_bulk = confirm_bulk  # [console] confirm_bulk
        self.controller = controller
        self._initial = snapshot
        self._profile_keys = dict(keymap or {})
        self._verbs: frozenset[str] | None = None  # fault verbs the sessions take, once known
        self._confirmed: set[str] = set()  # bulk keys the operator said yes to in this run
        self._show_log = show_log
        self._clock = clock
        self.run_result: Any = None
        self._stopping = False
        self._ui_lag = Trend()
        self._lag_samples: deque[tuple[float, float]] = deque(maxlen=6000)  # (unix time, ms)
        self._freeze_gc = freeze_gc  # the CLI does; tests share one process, so they don't
        self._loss_shown: set[str] = set()  # files whose data loss was already notified
        self.terminal_lost = False
        self._lag_expected = 0.0
        self._accepting = True

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield SessionGrid(id="grid")
                yield EventLogPanel(id="event-log")
            with Vertical(id="side"):
                yield CriteriaPanel(id="criteria")
                yield ConsoleStatsPanel(id="stats")
                yield FaultsPanel(id="faults")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#criteria").border_title = "criteria"
        self.query_one("#faults").border_title = "faults"
        log = self.query_one(EventLogPanel)
        log.display = self._show_log if self._show_log is not None else self.size.height >= 36
        if self._profile_keys:  # checked at profile load (console.bindings.check_keymap)
            self.set_keymap(self._profile_keys)
        self._lag_expected = self._clock() + LAG_INTERVAL
        self.set_interval(LAG_INTERVAL, self._measure_lag)
        if self.controller is not None:
            # SIGTERM (and SIGHUP, the terminal going away) stop the run as Ctrl-C does
            # headless: gracefully, final snapshot written, exit status 130.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self._interrupt)
            self.controller.subscribe(self._on_publish)
            for warning in self.controller.start_warnings():
                self.notify(
                    f"{warning}; criteria that need them will not be judged",
                    title="scheduled after the end",
                    severity="warning",
                    timeout=15,
                )
            self.controller.start()
            latest = self.controller.latest()
            if latest is not None:
                self.snapshot = latest
        elif self._initial is not None:
            self.snapshot = self._initial
        else:
            self.query_one(RunHeader).show(None)

    def on_unmount(self) -> None:
        self._accepting = False
        if self.controller is not None and self.run_result is None and not self._stopping:
            self.controller.stop()  # the app went away without a graceful quit
        path = os.environ.get(UI_STATS_ENV)
        if path:
            Path(path).write_text(json.dumps(self.ui_stats()) + "\n")

    # -- snapshots ---------------------------------------------------------------------------

    def _on_publish(self, snapshot: RunSnapshot) -> None:
        """Called in the engine thread; ``post_message`` is thread-safe."""
        if self._accepting:
            try:
                self.post_message(SnapshotReady(snapshot))
            except RuntimeError:  # the UI loop closed between the check and the post
                self._accepting = False

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        with self.batch_update():
            self.snapshot = message.snapshot

    def watch_snapshot(self, snapshot: RunSnapshot | None) -> None:
        if snapshot is None:
            return
        if self._freeze_gc and snapshot.state == "running" and snapshot.sessions:
            self._freeze_gc = False  # once
            self.call_after_refresh(self._freeze_startup_objects)
        note = "stopping…" if self._stopping else ""
        if snapshot.state in ("finished", "aborted") and not self._stopping:
            note = "run over · q to exit"
        self.query_one(RunHeader).show(snapshot, note)
        self._note_verbs(snapshot)
        self.query_one(SessionGrid).update_sessions(snapshot.sessions)
        self.query_one(CriteriaPanel).show(snapshot.criteria)
        self.query_one(ConsoleStatsPanel).show(snapshot.console, self.ui_lag_p99())
        for text in snapshot.data_loss:  # a file lost data: say so once per file
            name = text.partition(":")[0]
            if name not in self._loss_shown:
                self._loss_shown.add(name)
                self.notify(text, title="data not written", severity="error", timeout=15)
        self.query_one(FaultsPanel).show(snapshot.faults, ledger=snapshot.ledger)
        log = self.query_one(EventLogPanel)
        if log.display:
            log.show(snapshot.recent_events)
        if isinstance(self.screen, (SessionDetailScreen, RequestsScreen)):
            self.screen.show(snapshot)

    def on_session_opened(self, message: SessionOpened) -> None:
        if not isinstance(self.screen, ModalScreen):
            self.action_detail()

    def on_session_focused(self, message: SessionFocused) -> None:
        log = self.query_one(EventLogPanel)
        if log.log_filter[0] == "session" and message.session_id and self.snapshot:
            log.set_filter(("session", message.session_id), self.snapshot.recent_events)

    # -- UI loop health ----------------------------------------------------------------------

    def _freeze_startup_objects(self) -> None:
        """Move everything built at startup out of the garbage collector's sight.

        A full collection walks every object in the process: with Textual's DOM, the engine
        and 40 sessions that pause measured ~50 ms, stalling both loops (and so fault and
        reconnect timing) at random moments. Objects alive once the run is up live for the
        whole run anyway; ``gc.freeze`` leaves collections only the young garbage to scan.
        No ``gc.collect`` first: that full pass is exactly the stall this avoids.
        """
        gc.freeze()

    def _measure_lag(self) -> None:
        now = self._clock()
        lag_ms = max(0.0, now - self._lag_expected) * 1000.0
        self._ui_lag.record(lag_ms)
        self._lag_samples.append((time.time(), lag_ms))
        self._lag_expected = now + LAG_INTERVAL

    def ui_lag_p99(self) -> float | None:
        return self._ui_lag.percentile(99)

    def ui_stats(self) -> dict[str, Any]:
        """UI loop lag over the run, and the recent samples so a benchmark can pick a window."""
        lag = self._ui_lag
        return {
            "ui_lag_p50_ms": lag.percentile(50),
            "ui_lag_p99_ms": lag.percentile(99),
            "ui_lag_max_ms": lag.max if lag.count else None,
            "ui_lag_count": lag.count,
            "samples": [[round(t, 3), round(ms, 2)] for t, ms in self._lag_samples],
        }

    # -- the focused session -----------------------------------------------------------------

    @property
    def focused_session(self) -> SessionSnapshot | None:
        if self.snapshot is None:
            return None
        if isinstance(self.screen, SessionDetailScreen):
            return self.snapshot.session(self.screen.session_id)
        focused = self.query_one(SessionGrid).focused_id
        return self.snapshot.session(focused) if focused else None

    def _accepted(self, verb: str, sessions: Iterable[SessionSnapshot]) -> list[str]:
        """Fault actions for ``verb`` that any of ``sessions`` accepts, in kind order.

        A kind names its actions in its own words; ``VERB_ALIASES`` maps a key's verb to them
        (restarting an SSH session is ``ssh.reconnect``).
        """
        names = VERB_ALIASES.get(verb, (verb,))
        found: list[str] = []
        for session in sessions:
            for action in session.actions:
                if action.rsplit(".", 1)[-1] in names and action not in found:
                    found.append(action)
        return found

    # -- actions (bound in console.ui.keys) -----------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_SCREEN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        # Keys for faults no session in this run takes are hidden from the footer (an
        # HTTP-only profile shows + - b, not ^k d z), so ? and q stay visible at 80 columns.
        verb = {"hang": "hang", "hang_all": "hang"}.get(action)
        if action in ("fault", "fault_all", "rate") and parameters:
            verb = str(parameters[0])
        if verb is not None and self._verbs is not None:
            return any(name in self._verbs for name in VERB_ALIASES.get(verb, (verb,)))
        return True

    def action_command_line(self) -> None:
        def completions(text: str) -> list[str]:
            return complete(text, self.snapshot.sessions if self.snapshot is not None else ())

        self.push_screen(CommandLineScreen(completions), self._run_typed)

    def action_search(self) -> None:
        grid = self.query_one(SessionGrid)

        def completions(text: str) -> list[str]:
            sessions = self.snapshot.sessions if self.snapshot is not None else ()
            words = dict.fromkeys(w for s in sessions for w in (s.kind, s.group, s.state))
            return [w for w in ["fail", *words] if text and w.startswith(text.lower())]

        screen = CommandLineScreen(
            completions, placeholder="/fail  /ssh  /emit#2  (empty: all)", value=grid.filter_text
        )
        self.push_screen(screen, self._filter)

    def _filter(self, text: str | None) -> None:
        """Filter the grid and the event log by ``text``; "" shows everything again."""
        if text is None:
            return
        text = text.lstrip("/").strip()
        self.query_one(SessionGrid).set_filter(text)
        log = self.query_one(EventLogPanel)
        events = self.snapshot.recent_events if self.snapshot is not None else ()
        log.set_filter(("text", text) if text else ("all", ""), events)
        if text:
            log.display = self._show_log = True

    def _run_typed(self, text: str | None) -> None:
        """Run a typed command: a fault recorded with source ``command``, or a run command."""
        if not text:
            return
        try:
            typed = parse(text, self.snapshot.sessions if self.snapshot is not None else ())
        except UsageError as exc:
            self.notify(str(exc), title=f":{text}", severity="warning", timeout=4)
            return
        if typed.action in RUN_VERBS:
            if typed.action == "export":
                self.action_export()
            elif (typed.action == "pause") != (
                self.snapshot is not None and self.snapshot.state == "paused"
            ):
                self.action_pause()
            return
        self._inject(typed.action, typed.target, typed.params, source="command")

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Textual's screenshot (palette: "Save screenshot"), into the run directory with the
        run's other files rather than ~/Downloads, which may not exist."""
        if path is None and self.snapshot is not None and self.snapshot.run_dir:
            path = self.snapshot.run_dir
        self.deliver_screenshot(filename, path)

    def on_key(self, event: events.Key) -> None:
        """A fault key hidden because no session takes it still says so when pressed."""
        if self._verbs is None or isinstance(self.screen, ModalScreen):
            return
        for spec in APP_KEYS:
            keys = self._profile_keys.get(spec.id, spec.key).split(",")
            if event.key in (k.strip() for k in keys) and not self.check_action(
                *_action_of(spec.action)
            ):
                verb = _action_of(spec.action)[1][0] if "(" in spec.action else spec.action
                self.notify(f"no session in this run accepts {verb}", severity="warning",
                            timeout=2)  # fmt: skip
                return

    def _note_verbs(self, snapshot: RunSnapshot) -> None:
        """The fault verbs the run's sessions take; the footer follows when they change."""
        verbs = frozenset(a.rsplit(".", 1)[-1] for s in snapshot.sessions for a in s.actions)
        if verbs and verbs != self._verbs:
            self._verbs = verbs
            self.refresh_bindings()

    def action_fault(self, verb: str) -> None:
        session = self.focused_session
        if session is None:
            self.notify("no session is focused", severity="warning", timeout=2)
            return
        actions = self._accepted(verb, [session])
        if not actions:
            self.notify(
                f"{verb} does not apply to {session.id} ({session.kind})",
                severity="warning",
                timeout=2,
            )
            return
        self._inject(actions[0], session.id)

    def action_fault_all(self, verb: str) -> None:
        sessions = self.snapshot.sessions if self.snapshot else ()
        actions = self._accepted(verb, sessions)
        if not actions:
            self.notify(f"no session in this run accepts {verb}", severity="warning", timeout=2)
            return
        if self._confirm_bulk and verb in BULK_CONFIRM and verb not in self._confirmed:
            # Destructive on every session: ask once per key and run, then trust the operator.
            def answered(yes: bool | None) -> None:
                if yes:
                    self._confirmed.add(verb)
                    self.action_fault_all(verb)

            count = sum(1 for s in sessions if set(s.actions) & set(actions))
            self.push_screen(ConfirmScreen(f"{verb.capitalize()} all {count} sessions?"), answered)
            return
        for action in actions:
            self._inject(action, "all")

    def action_hang(self) -> None:
        session = self.focused_session
        self.action_fault("resume" if session is not None and session.state == "hung" else "hang")

    def action_hang_all(self) -> None:
        sessions = self.snapshot.sessions if self.snapshot else ()
        hung = any(s.state == "hung" for s in sessions)
        self.action_fault_all("resume" if hung else "hang")

    def action_rate(self, verb: str) -> None:
        """Rate controls act on the focused session if it takes them, else on every one."""
        session = self.focused_session
        if session is not None and self._accepted(verb, [session]):
            self.action_fault(verb)
        else:
            self.action_fault_all(verb)

    def action_pause(self) -> None:
        if self.controller is None or self.snapshot is None:
            self.notify("no run attached", severity="warning", timeout=2)
            return
        if self.snapshot.state == "paused":
            self._track(self.controller.resume(), lambda _: self.notify("run resumed", timeout=2))
        elif self.snapshot.state == "running":
            self._track(self.controller.pause(), lambda _: self.notify("run paused", timeout=2))
        else:
            self.notify(f"the run is {self.snapshot.state}: nothing to pause", timeout=2)

    def action_toggle_chaos(self) -> None:
        if self.controller is None:
            self.notify("no run attached", severity="warning", timeout=2)
            return
        self._track(
            self.controller.toggle_chaos(),
            lambda on: self.notify(f"chaos {'on' if on else 'off'}", timeout=2),
        )

    def action_export(self) -> None:
        if self.controller is None:
            self.notify("no run attached", severity="warning", timeout=2)
            return
        self._track(self.controller.export(), self._exported)

    def action_remove_node(self) -> None:
        session = self.focused_session
        if self.controller is None or session is None:
            self.notify("no session is focused", severity="warning", timeout=2)
            return
        self._track(
            self.controller.remove_node(session.id),
            lambda node: self.notify(f"cluster node {node[:8]} removed", timeout=4),
        )

    def _exported(self, paths: list[Path]) -> None:
        if not paths:
            self.notify("nothing exported", severity="warning")
            return
        where = Path(paths[0]).parent
        names = ", ".join(Path(p).name for p in paths)
        self.notify(f"exported {names} to {where}", title="export", timeout=8)

    def action_detail(self) -> None:
        session = self.focused_session
        if session is None:
            self.notify("no session is focused", severity="warning", timeout=2)
            return
        if isinstance(self.screen, SessionDetailScreen):
            self.pop_screen()
            return
        controller = self.controller
        screen = SessionDetailScreen(
            session.id,
            clock=self._clock,
            fetch_screen=controller.screen if controller is not None else None,
            fetch_tables=controller.tables if controller is not None else None,
        )
        self.push_screen(screen)
        if self.snapshot is not None:
            screen.show(self.snapshot, force=True)

    def action_requests(self) -> None:
        """The run's requests by name, failures and checks, live; the key again closes it."""
        if isinstance(self.screen, RequestsScreen):
            self.pop_screen()
            return
        fetch = self.controller.tables if self.controller is not None else None
        screen = RequestsScreen(fetch=fetch, clock=self._clock)
        self.push_screen(screen)
        if self.snapshot is not None:
            screen.show(self.snapshot)

    def on_resize(self, event: events.Resize) -> None:
        # Until the operator shows or hides it, the event log follows the terminal's height.
        if self._show_log is None:
            for log in self.query(EventLogPanel):
                log.display = event.size.height >= 36

    def action_toggle_log(self) -> None:
        self._show_log = not self.query_one(EventLogPanel).display  # the operator decided
        log = self.query_one(EventLogPanel)
        log.display = not log.display
        if log.display and self.snapshot is not None:
            log.show(self.snapshot.recent_events)

    def action_cycle_filter(self) -> None:
        """all -> the focused session's kind -> the focused session -> all."""
        log = self.query_one(EventLogPanel)
        session = self.focused_session
        what = log.log_filter[0]
        if what == "all" and session is not None:
            new = ("kind", session.kind)
        elif what == "kind" and session is not None:
            new = ("session", session.id)
        else:
            new = ("all", "")
        log.display = self._show_log = True
        log.set_filter(new, self.snapshot.recent_events if self.snapshot else ())
        self.notify(f"event log: {new[0]} {new[1]}".strip(), timeout=2)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self._key_help()))

    async def action_quit(self) -> None:
        if isinstance(self.screen, QuitScreen):
            return
        if self.controller is None:
            self.exit(0)
            return
        running = self.snapshot is None or self.snapshot.state not in ("finished", "aborted")
        self.push_screen(QuitScreen(running), self._quit_answer)

    def _quit_answer(self, answer: bool | None) -> None:
        if not answer or self.controller is None or self._stopping:
            return
        self._stopping = True
        if self.snapshot is not None:
            self.query_one(RunHeader).show(self.snapshot, "stopping…")
        self._track(self.controller.stop(), self._stopped, on_error=self._stop_failed)

    def _interrupt(self) -> None:
        if self.controller is None or self._stopping:
            return
        self._stopping = True
        self._track(
            self.controller.stop(interrupted=True), self._stopped, on_error=self._stop_failed
        )

    def terminal_gone(self) -> None:
        """The terminal hung up (the driver saw EIO): stop as on SIGHUP, exit 130."""
        self.terminal_lost = True
        self._interrupt()

    def _stopped(self, result: Any) -> None:
        self.run_result = result
        self.exit(int(getattr(result, "exit_code", 0)))

    def _stop_failed(self, exc: BaseException) -> None:
        self.notify(f"stop failed: {exc}", severity="error", timeout=10)
        self.exit(2)

    # -- talking to the engine ---------------------------------------------------------------

    def action_net_menu(self) -> None:
        """A short menu of network-fault presets for the focused session's link."""
        session = self.focused_session
        sessions = self.snapshot.sessions if self.snapshot else ()
        link = link_of(session, sessions) if session is not None else None
        if session is None or link is None:
            self.notify("the focused session goes through no link", severity="warning", timeout=2)
            return
        target = session.id

        def chosen(index: int | None) -> None:
            if index is None or not 0 <= index < len(PRESETS):
                return
            preset = PRESETS[index]
            current = self.snapshot.session(link.id) if self.snapshot else None
            if is_active(preset, current or link):
                action, params = removal(preset)
                self._inject(action, target, params)
            else:
                self._inject(preset.action, target, preset.params)

        self.push_screen(NetMenuScreen(target, link), chosen)

    def _inject(
        self,
        action: str,
        target: str,
        params: Mapping[str, Any] | None = None,
        source: str = "key",
    ) -> None:
        if self.controller is None:
            self.notify("no run attached", severity="warning", timeout=2)
            return
        try:
            future = self.controller.inject(
                action, target, params=dict(params or {}), source=source
            )
        except Exception as exc:  # the controller refuses synchronously: say why
            self.notify(str(exc) or type(exc).__name__, severity="warning", timeout=3)
            return
        self._track(future, self._fault_done)

    def _fault_done(self, record: FaultRecord) -> None:
        if record.note:
            self.notify(record.note, severity="warning", timeout=3)
        else:
            reached = ", ".join(record.sessions[:3]) + ("…" if len(record.sessions) > 3 else "")
            self.notify(f"{record.action} → {reached or 'no session'}", timeout=2)

    def _track(
        self,
        future: Future[T],
        on_done: Callable[[T], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Deliver a controller future's outcome on the UI loop, never blocking it."""
        waiter = asyncio.wrap_future(future)

        def done(fut: asyncio.Future[T]) -> None:
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                if on_error is not None:
                    on_error(exc)
                else:
                    self.notify(str(exc) or type(exc).__name__, severity="warning", timeout=3)
                return
            on_done(fut.result())

        waiter.add_done_callback(done)

    # -- discoverability ---------------------------------------------------------------------

    def _key_help(self) -> list[KeyHelp]:
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        grouped: dict[str, tuple[Any, list[str]]] = {}
        for active in screen.active_bindings.values():
            binding = active.binding
            if binding.id is None or binding.system:
                continue
            entry = grouped.setdefault(binding.id, (binding, []))
            display = self.get_key_display(binding)
            if display not in entry[1]:
                entry[1].append(display)
        order = [b.id for b in APP_BINDINGS]
        ranked = sorted(grouped, key=lambda i: order.index(i) if i in order else len(order))
        return [
            KeyHelp(" ".join(grouped[i][1]), grouped[i][0].description, i, grouped[i][0].tooltip)
            for i in ranked
        ]


def _action_of(text: str) -> tuple[str, tuple[object, ...]]:
    """``"fault('kill')"`` as ``("fault", ("kill",))``, as Textual parses a binding's action."""
    name, _, rest = text.partition("(")
    return name, tuple(a.strip().strip("'\"") for a in rest.rstrip(")").split(",") if a.strip())


def make_app(
    profile: Profile | None = None,
    *,
    controller: Controller | None = None,
    snapshot: RunSnapshot | None = None,
    runs_dir: Path | None = None,
    duration: float | None = None,
    replay: Sequence[ReplayFault] = (),
    show_log: bool | None = None,
    clock: Callable[[], float] = time.monotonic,
    freeze_gc: bool = False,
) -> StressdeckApp:
    """Build the console, the one way both the CLI and the tests do it (posting's factory).

    With a profile and ``runs_dir`` (and no controller) it makes the
    :class:`~console.controller.RunController`; with only ``snapshot`` it shows that snapshot.
    """
    if controller is None and profile is not None and runs_dir is not None:
        from console.controller import RunController

        controller = RunController(profile, runs_dir=runs_dir, duration=duration, replay=replay)
    keymap = dict(profile.keys) if profile is not None else {}
    return StressdeckApp(
        controller=controller,
        snapshot=snapshot,
        keymap=keymap,
        show_log=show_log,
        clock=clock,
        freeze_gc=freeze_gc,
        confirm_bulk=profile.console.confirm_bulk if profile is not None else True,
    )


def closing_text(result: Any) -> str:
    """The few lines printed to the terminal after the console closes."""
    snapshot: RunSnapshot | None = getattr(result, "snapshot", None)
    code = getattr(result, "exit_code", "?")
    if snapshot is None:
        return f"Stressdeck: run ended, exit code {code}"
    lines = [
        f"Stressdeck run {snapshot.profile_name!r}: {snapshot.state} after "
        f"{clock_text(snapshot.elapsed)} of {clock_text(snapshot.duration)}, exit code {code}"
    ]
    if snapshot.abort_reason:
        lines.append(f"  aborted: {snapshot.abort_reason}")
    lines += [f"  NOT WRITTEN {text}" for text in snapshot.data_loss]
    lines.append(
        f"  verdict: {verdicts.label(verdicts.overall(c.state for c in snapshot.criteria))}"
    )
    for c in snapshot.criteria:
        text = f"{c.value_text} (target {c.target_text})"
        if c.state == verdicts.NOT_JUDGED:
            text = c.evidence
        lines.append(f"  {verdicts.label(c.state)} {c.name}: {text}")
    by_source: dict[str, int] = {}
    for fault in snapshot.faults:
        by_source[fault.source] = by_source.get(fault.source, 0) + 1
    sources = ", ".join(f"{n} {s}" for s, n in sorted(by_source.items())) or "none"
    lines.append(f"  faults: {snapshot.fault_count} ({sources}); events: {snapshot.events_logged}")
    lines.append(f"  run directory: {getattr(result, 'run_dir', snapshot.run_dir)}")
    return "\n".join(lines)


def run_console(
    profile: Profile,
    *,
    runs_dir: Path,
    duration: float | None = None,
    replay: Sequence[ReplayFault] = (),
) -> int:
    """Open the console on ``profile``, run until the operator quits; return the exit code.

    ``replay`` faults (from a previous run's events.jsonl) are injected at their times.
    The summary is printed after the terminal is restored. If the app ends without a graceful
    quit (a crash), the run is still stopped and its final snapshot written.
    """
    app = make_app(profile, runs_dir=runs_dir, duration=duration, replay=replay, freeze_gc=True)
    controller = app.controller
    assert controller is not None
    if app.driver_class is LinuxDriver:
        app.driver_class = HangupSafeDriver
    app.run()
    result = app.run_result
    if app.terminal_lost:
        detach_from_terminal()
    if result is None:  # the app ended without a graceful quit: still stop and finish the run
        try:
            result = controller.stop(interrupted=app.terminal_lost).result(timeout=60)
        except Exception as exc:
            _print(f"stressdeck: the run failed: {exc!r}", sys.stderr)
            return ExitStatus.FAILED
    _print(closing_text(result), sys.stdout)
    return int(getattr(result, "exit_code", ExitStatus.FAILED))


def _print(text: str, file: TextIO) -> None:
    try:
        print(text, file=file, flush=True)
    except OSError:  # the terminal is gone (EIO): the run's files say it all
        detach_from_terminal()
