"""The console's Python child processes: started one way, spoken to one way.

Every Python child of the console (the embedded SSH and HTTP targets, the HTTP load workers)
is started by :class:`ChildProcess`: ``python -c "from MODULE import main; main(ARGS)"``, the
console's root first on ``PYTHONPATH``, the environment the caller gives (the run's, minus
every secret-bearing variable: :meth:`console.secrets.Secrets.child_env`), and the kernel told
to kill it when the console dies (:func:`console.lifetime.die_with_parent`).

One control protocol, JSON lines both ways:

* the child's first line on stdout announces it: ``{"event": "ready", ...}`` with whatever the
  parent needs (a port, a URL, a host key) — :func:`announce`;
* the parent sends commands ``{"cmd": NAME, ...}`` on stdin; one that carries an ``"id"`` is
  answered by exactly one line ``{"id": ID, "ok": true|false, ...}`` (``error`` when not ok),
  one without is a notification (a worker's ``pause``) — :meth:`ChildProcess.command`,
  :meth:`ChildProcess.notify`, and on the child's side :func:`serve_commands`;
* any other line from the child is a message of its own (a worker's metric deltas), handed to
  the parent's ``on_message``;
* stdin closing tells the child to exit: a console that dies leaves nothing behind.

Why one: three children used to have three protocols (an HTTP admin endpoint with a token, JSON
lines with ids, JSON lines without replies) and three ways to start. One way is one thing to
get right: private environments, dying with the console, bounded waits, no half-read lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from console.errors import TargetUnavailable
from console.lifetime import die_with_parent
from console.targets.process import terminate_async

__all__ = ["ChildProcess", "announce", "read_commands", "serve_commands"]

ROOT = str(Path(__file__).resolve().parents[1])
_LIMIT = 16 * 1024 * 1024  # longest line either side sends (a worker's delta with histograms)

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[Message | None] | Message | None]


def announce(**fields: Any) -> None:
    """The child's first stdout line: it is up, and what the parent needs to know."""
    sys.stdout.write(json.dumps({"event": "ready", **fields}) + "\n")
    sys.stdout.flush()


def _reply(message: Message) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


async def read_commands() -> asyncio.StreamReader | None:
    """The child's stdin as a stream of command lines (None when it cannot be watched)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LIMIT)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        return None  # stdin is a regular file or closed: no control channel
    return reader


async def serve_commands(handle: Handler, reader: asyncio.StreamReader | None = None) -> None:
    """The child's side: call ``handle`` with each command until stdin closes.

    A command with an ``id`` gets one reply line: what ``handle`` returned (``ok`` true unless
    it says otherwise), or ``ok`` false with the error if it raised. Returns at EOF, when the
    parent has gone or asked the child to end by closing stdin.
    """
    reader = reader if reader is not None else await read_commands()
    if reader is None:
        return
    while line := await reader.readline():
        try:
            command = json.loads(line)
            if not isinstance(command, dict):
                raise ValueError("a command is a JSON object")
        except ValueError as exc:
            _reply({"ok": False, "error": f"bad command line: {exc}"})
            continue
        request_id = command.get("id")
        try:
            result = handle(command)
            answer = await result if inspect.isawaitable(result) else result
            reply: Message = {"ok": True, **(answer or {})}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if request_id is not None:
            _reply({**reply, "id": request_id, "cmd": command.get("cmd")})


class ChildProcess:
    """The parent's side of one child: start it, wait for its announcement, command it."""

    def __init__(
        self,
        module: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        name: str = "",
        on_message: Callable[[Message], None] | None = None,
        stderr: int | None = None,
    ) -> None:
        self.module = module
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.name = name or module.rsplit(".", 1)[-1]
        self.on_message = on_message
        self.stderr = stderr
        self.proc: asyncio.subprocess.Process | None = None
        self.info: Message = {}
        self.gone = False
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self, timeout: float = 15.0) -> Message:
        """Start the child and return its announcement; call it from the loop that lives as
        long as the child (the kernel's parent-death signal follows the starting thread)."""
        code = f"import sys; from {self.module} import main; sys.exit(main(sys.argv[1:]))"
        env = dict(self.env)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            limit=_LIMIT,
            preexec_fn=die_with_parent(),
        )
        assert self.proc.stdout is not None
        try:
            while True:
                line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
                if not line:
                    raise TargetUnavailable(f"{self.name} exited before it was ready")
                first = json.loads(line)
                if isinstance(first, dict) and first.get("event") == "ready":
                    break
        except (asyncio.TimeoutError, ValueError) as exc:
            await self.stop(grace=1.0)
            raise TargetUnavailable(f"{self.name} did not start: {exc!r}") from None
        except TargetUnavailable:
            await self.stop(grace=1.0)
            raise
        self.info = first
        self._reader = asyncio.create_task(self._read(), name=f"child:{self.name}")
        return first

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not ours (a stray print): the protocol is JSON lines
                if not isinstance(message, dict):
                    continue
                request_id = message.pop("id", None)
                if request_id is not None:
                    waiter = self._waiting.pop(request_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                elif self.on_message is not None:
                    self.on_message(message)
        except (OSError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            self.gone = True
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(TargetUnavailable(f"{self.name} has exited"))
            self._waiting.clear()

    async def _send(self, message: Message, timeout: float) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.returncode is not None or self.gone:
            raise TargetUnavailable(f"{self.name} is not running")
        try:
            proc.stdin.write((json.dumps(message, separators=(",", ":")) + "\n").encode())
            await asyncio.wait_for(proc.stdin.drain(), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise TargetUnavailable(f"{message.get('cmd')!r} not sent: {exc!r}") from None

    async def command(self, cmd: str, timeout: float = 10.0, **fields: Any) -> Message:
        """Send a command and return its reply; TargetUnavailable if none comes in time."""
        request_id = next(self._ids)
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        try:
            await self._send({**fields, "cmd": cmd, "id": request_id}, timeout)
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise TargetUnavailable(
                f"{self.name}: no answer to {cmd!r} within {timeout:g}s"
            ) from None
        finally:
            self._waiting.pop(request_id, None)

    async def notify(self, cmd: str, timeout: float = 5.0, **fields: Any) -> None:
        """Send a command that gets no reply (a load worker's controls)."""
        await self._send({**fields, "cmd": cmd}, timeout)

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        return code

    async def stop(self, grace: float = 5.0) -> None:
        """Close stdin (the child's cue to exit), then SIGTERM and SIGKILL if it lingers."""
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                proc.stdin.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), grace / 2)
        if proc.returncode is None:
            await terminate_async(proc, grace / 2)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self.gone = True
