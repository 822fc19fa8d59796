"""The embedded SSH server: a real SSH target on 127.0.0.1 that needs no sshd and no root.

``stressdeck target ssh [--host 127.0.0.1] [--port 0] [--state-dir DIR] [--keep-keys]``
generates (or reuses) an ed25519 host key and an ed25519 client key in the state directory,
authorizes the client key, listens, prints ONE JSON line describing itself and serves until
stopped::

    {"event": "ready", "host": "127.0.0.1", "port": 40211, "pid": 1234,
     "host_key": ".../ssh_host_ed25519_key", "host_key_fingerprint": "SHA256:...",
     "client_key": ".../client_ed25519_key", "known_hosts": ".../known_hosts", "user": "me"}

Exec requests and PTY sessions are really run on the local machine (asyncio subprocesses; a PTY
request gets a real pseudo-terminal), so ``cat /proc/stat`` polled through it reports this
machine's real figures. Any user name is accepted; only the generated client key authenticates.

Faults are driven over stdin with the console's one child protocol (:mod:`console.children`):
JSON commands, one per line; a command with an ``"id"`` is answered by one line with that id:

* ``{"cmd": "restart", "down": "5s"}`` - stop listening and drop every connection at once (and
  the processes they run), then listen again on the same port after the downtime;
* ``{"cmd": "auth_fail", "count": N}`` - reject the next N authentications;
* ``{"cmd": "drop"}`` - drop every connection but keep listening;
* ``{"cmd": "stats"}`` - connection and authentication counts;
* ``{"cmd": "quit"}``.

It runs in its own process because a target that shares the console's event loop would make the
console's CPU and latency figures meaningless. :class:`console.targets.ssh_control.EmbeddedSshTarget`
starts and controls it (the parent's side).

The client key logs in as the operator, so it is guarded like any private key: the state
directory is 0700 and every file in it 0600 from its creation (:mod:`console.files`; never
written readable and chmodded afterwards), and the keys it generated are deleted when it exits
unless ``--keep-keys`` is given (keys it found and reused are left alone). Without
``--state-dir`` the keys go to a fresh private temporary directory, removed at exit with the
same exception, so the command leaves nothing behind in the temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import getpass
import json
import os
import pty
import shutil
import signal
import struct
import sys
import tempfile
import termios
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncssh

from console.children import announce, serve_commands
from console.files import private_dir, write_private
from console.lifetime import die_with_parent
from console.targets.ssh_control import CLIENT_KEY_NAME, HOST_KEY_NAME, remove_keys
from console.units import parse_duration

__all__ = [
    "CLIENT_KEY_NAME",
    "HOST_KEY_NAME",
    "SshTargetServer",
    "ensure_keys",
    "main",
    "remove_keys",
]

_READ_CHUNK = 65536
_BATCH_DELAY = 0.003  # seconds a PTY burst may gather before it is sent


def _emit(record: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def ensure_keys(state_dir: Path) -> tuple[asyncssh.SSHKey, asyncssh.SSHKey, bool]:
    """Load the host and client keys from ``state_dir``, generating any that are missing.

    Reusing keys across restarts is what lets a client pin the host key once per state dir.
    Returns the keys and whether any was generated. A key is written 0600 with ``O_EXCL``
    (never through a file another user could have opened or planted first).
    """
    private_dir(state_dir, tighten=True)
    keys = []
    generated = False
    for name in (HOST_KEY_NAME, CLIENT_KEY_NAME):
        path = state_dir / name
        if path.exists():
            key = asyncssh.read_private_key(str(path))
        else:
            key = asyncssh.generate_private_key("ssh-ed25519", comment=f"stressdeck-{name}")
            write_private(path, key.export_private_key(), exclusive=True)
            write_private(Path(f"{path}.pub"), key.export_public_key())
            generated = True
        keys.append(key)
    return keys[0], keys[1], generated


class _Connection(asyncssh.SSHServer):
    """Per-connection server callbacks: authentication and bookkeeping."""

    def __init__(self, server: SshTargetServer) -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.doomed = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.server.connections.add(conn)
        self.server.stats["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.server.connections.discard(self.conn)
            self.server.kill_children(self.conn)

    def begin_auth(self, username: str) -> bool:
        if self.server.auth_failures > 0:
            self.server.auth_failures -= 1
            self.doomed = True
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = not self.doomed and key.public_data == self.server.client_public.public_data
        self.server.stats["auth_ok" if ok else "auth_rejected"] += 1
        return ok


def _set_winsize(fd: int, size: tuple[int, int, int, int]) -> None:
    cols, rows, width, height = size
    if cols and rows:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, width, height))


def _make_controlling_tty() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class SshTargetServer:
    """The asyncssh server, the processes it runs, and the fault controls."""

    def __init__(self, state_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.host_key, self.client_key, self.generated_keys = ensure_keys(state_dir)
        self.client_public = self.client_key.convert_to_public()
        self.acceptor: asyncssh.SSHAcceptor | None = None
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.children: dict[asyncio.subprocess.Process, object] = {}  # child -> its connection
        self.auth_failures = 0
        self.stats: dict[str, int] = {
            "connections": 0,
            "auth_ok": 0,
            "auth_rejected": 0,
            "execs": 0,
            "ptys": 0,
            "restarts": 0,
        }
        self._restart_task: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()

    @property
    def known_hosts_path(self) -> Path:
        return self.state_dir / "known_hosts"

    async def listen(self) -> None:
        self.acceptor = await asyncssh.create_server(
            lambda: _Connection(self),
            self.host,
            self.port,
            server_host_keys=[self.host_key],
            process_factory=self._handle_process,
            encoding=None,
            keepalive_interval=5,
            keepalive_count_max=3,
        )
        sockets = self.acceptor.sockets
        self.port = sockets[0].getsockname()[1]
        self._write_known_hosts()

    def _write_known_hosts(self) -> None:
        public = self.host_key.export_public_key().decode().strip()
        names = f"[{self.host}]:{self.port},[localhost]:{self.port}"
        write_private(self.known_hosts_path, f"{names} {public}\n")

    def info(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "pid": os.getpid(),
            "host_key": str(self.state_dir / HOST_KEY_NAME),
            "host_key_fingerprint": self.host_key.get_fingerprint(),
            "client_key": str(self.state_dir / CLIENT_KEY_NAME),
            "known_hosts": str(self.known_hosts_path),
            "user": getpass.getuser(),
        }

    # -- faults -------------------------------------------------------------------------------

    def drop_all(self) -> int:
        """Abort every connection (the client sees the TCP connection reset) and its processes."""
        dropped = len(self.connections)
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()
        for child in list(self.children):
            _kill_group(child)
        return dropped

    def kill_children(self, conn: object) -> None:
        """A connection is gone: its commands and shells go with it, as with sshd."""
        for child, owner in list(self.children.items()):
            if owner is conn:
                _kill_group(child)

    async def restart(self, down: float) -> int:
        if self.acceptor is not None:
            self.acceptor.close()
            self.acceptor = None
        dropped = self.drop_all()
        self.stats["restarts"] += 1

        async def come_back() -> None:
            await asyncio.sleep(down)
            await self.listen()
            _emit({"event": "listening", **self.info()})  # back after a restart

        self._restart_task = asyncio.create_task(come_back())
        return dropped

    async def close(self) -> None:
        if self._restart_task is not None:
            self._restart_task.cancel()
        if self.acceptor is not None:
            self.acceptor.close()
            self.acceptor = None
        self.drop_all()

    # -- processes -----------------------------------------------------------------------------

    async def _handle_process(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        try:
            if process.get_terminal_type() is not None:
                status = await self._run_pty(process)
            else:
                status = await self._run_exec(process)
        except (OSError, asyncssh.Error) as exc:
            with contextlib.suppress(Exception):
                process.stderr.write(f"stressdeck target: {exc}\n".encode())
            status = 255
        with contextlib.suppress(Exception):
            if status < 0:  # killed by a signal: report it the way sshd does
                process.exit_with_signal(signal.Signals(-status).name[3:])
            else:
                process.exit(status)

    async def _spawn(
        self, process: asyncssh.SSHServerProcess[bytes], argv: list[str], **kwargs: Any
    ) -> asyncio.subprocess.Process:
        env = dict(os.environ, TERM=kwargs.pop("term", "dumb"), PS1="$ ")
        kwargs.setdefault("preexec_fn", die_with_parent())
        child = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=os.path.expanduser("~"), **kwargs
        )
        self.children[child] = process.channel.get_connection()
        watcher = asyncio.create_task(self._hang_up_when_closed(process, child))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return child

    async def _hang_up_when_closed(
        self, process: asyncssh.SSHServerProcess[bytes], child: asyncio.subprocess.Process
    ) -> None:
        """The channel closed under a running command: kill it, as sshd hangs up a terminal."""
        with contextlib.suppress(Exception):
            await process.channel.wait_closed()
        _kill_group(child)

    async def _run_exec(self, process: asyncssh.SSHServerProcess[bytes]) -> int:
        self.stats["execs"] += 1
        # No command and no terminal (`ssh -T host`): a shell reading commands from stdin.
        argv = ["/bin/sh", "-c", process.command] if process.command else ["/bin/sh"]
        child = await self._spawn(
            process,
            argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert child.stdin and child.stdout and child.stderr
        feed = asyncio.create_task(_feed_stdin(process, child.stdin))
        try:
            await asyncio.gather(
                _pump(child.stdout, process.stdout), _pump(child.stderr, process.stderr)
            )
            return await child.wait()
        finally:
            feed.cancel()
            _kill_group(child)
            self.children.pop(child, None)

    async def _run_pty(self, process: asyncssh.SSHServerProcess[bytes]) -> int:
        self.stats["ptys"] += 1
        master, slave = pty.openpty()
        _set_winsize(slave, process.get_terminal_size())
        argv = ["/bin/sh", "-c", process.command] if process.command else ["/bin/sh", "-i"]
        loop = asyncio.get_running_loop()
        try:
            child = await self._spawn(
                process,
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=die_with_parent(then=_make_controlling_tty),
                term=process.get_terminal_type() or "xterm",
            )
        finally:
            os.close(slave)
        reader = _TerminalReader()
        transport, _ = await loop.connect_read_pipe(lambda: reader, os.fdopen(master, "rb", 0))
        feed = asyncio.create_task(_feed_fd(process, master))
        try:
            await reader.pump(process.stdout)
            return await child.wait()
        finally:
            feed.cancel()
            transport.close()
            _kill_group(child)
            self.children.pop(child, None)


async def _pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    """Copy a child's output to the channel until EOF (or EIO, which a PTY gives at the end)."""
    while True:
        try:
            data = await source.read(_READ_CHUNK)
        except OSError:
            return
        if not data:
            return
        try:
            sink.write(data)
            await sink.drain()
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            return


class _TerminalReader(asyncio.Protocol):
    """Reads a PTY master and sends its output in batches.

    A shell writes line by line; sending each line as its own SSH packet would cost the client
    a decryption and a wake-up per line. Waiting :data:`_BATCH_DELAY` after the first byte
    lets a burst gather into one packet, as sshd's larger read buffer does, for a delay no
    terminal user can see.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.ready = asyncio.Event()
        self.transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.ready.set()
        if len(self.buffer) > 4 * _READ_CHUNK and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self.eof = True
        self.ready.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:  # EIO: the terminal hung up
        self.eof = True
        self.ready.set()

    async def pump(self, sink: asyncssh.SSHWriter[bytes]) -> None:
        while True:
            await self.ready.wait()
            if not self.eof:
                await asyncio.sleep(_BATCH_DELAY)
            self.ready.clear()
            data, self.buffer = bytes(self.buffer), bytearray()
            if self.transport is not None and not self.eof:
                self.transport.resume_reading()
            if data:
                try:
                    sink.write(data)
                    await sink.drain()
                except (asyncssh.Error, BrokenPipeError, ConnectionError):
                    return
            if self.eof and not self.buffer:
                return


async def _feed_stdin(
    process: asyncssh.SSHServerProcess[bytes], sink: asyncio.StreamWriter
) -> None:
    with contextlib.suppress(Exception):
        while data := await process.stdin.read(_READ_CHUNK):
            sink.write(data)
            await sink.drain()
        sink.close()


async def _feed_fd(process: asyncssh.SSHServerProcess[bytes], fd: int) -> None:
    with contextlib.suppress(Exception):
        while data := await process.stdin.read(_READ_CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]


def _kill_group(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)


async def _answer(
    server: SshTargetServer, request: Mapping[str, Any], stop: asyncio.Event
) -> dict[str, Any]:
    """Carry out one control command (console.children protocol); what to answer."""
    cmd = request.get("cmd")
    if cmd == "restart":
        down = parse_duration(request.get("down", "5s"))
        dropped = await server.restart(down)
        return {"dropped": dropped, "down": down}
    if cmd == "auth_fail":
        server.auth_failures += int(request.get("count", 1))
        return {"pending": server.auth_failures}
    if cmd == "drop":
        return {"dropped": server.drop_all()}
    if cmd == "stats":
        return {**server.stats, "open": len(server.connections)}
    if cmd == "quit":
        stop.set()
        return {}
    raise ValueError(f"unknown command {cmd!r}")


async def serve(args: argparse.Namespace) -> int:
    temporary = not args.state_dir
    # mkdtemp: a fresh, unguessable, 0700 directory, so nobody can plant files in it first.
    state_dir = Path(tempfile.mkdtemp(prefix="sd-ssh-")) if temporary else Path(args.state_dir)
    server: SshTargetServer | None = None
    try:
        server = SshTargetServer(state_dir, args.host, args.port)
        await server.listen()
        announce(**server.info())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)

        async def control() -> None:
            await serve_commands(lambda request: _answer(server, request, stop))
            if args.exit_on_eof:
                stop.set()  # stdin closed: the parent is gone

        control_task = asyncio.create_task(control())
        await stop.wait()
        control_task.cancel()
        await server.close()
    finally:
        if not args.keep_keys:
            if temporary:
                shutil.rmtree(state_dir, ignore_errors=True)
            elif server is not None and server.generated_keys:
                remove_keys(state_dir)
    # Exit now rather than through asyncio.run's teardown, which waits for every cancelled
    # handler: a stuck channel must never keep a target alive after it was told to stop.
    sys.stdout.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stressdeck target ssh", description="Run the embedded SSH target on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument(
        "--state-dir",
        default="",
        help="where keys live, made 0700 (reused if present); default a private temporary "
        "directory removed at exit",
    )
    parser.add_argument(
        "--keep-keys",
        action="store_true",
        help="keep the keys generated for this run (default: deleted at exit)",
    )
    parser.add_argument(
        "--exit-on-eof", action="store_true", help="exit when stdin closes (the parent is gone)"
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1"):
        parser.error("the embedded target listens on loopback only (127.0.0.1 or ::1)")
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
