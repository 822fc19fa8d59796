"""End to end: a hostile SSH server cannot act on the operator's terminal through the console.

The test runs its own asyncssh server on 127.0.0.1 (host key pinned through a known_hosts
file, as a real host's would be). It answers every exec command with escape sequences on stderr
(OSC 0 title change, OSC 52 clipboard write, ``ESC c`` reset, CSI clear screen), writes them into
the PTY channel too, drops the first connection with them in its disconnect reason, and refuses
every later login with them. The installed ``stressdeck`` runs against it under tmux with the
clipboard wired to tmux's buffers (``set-clipboard on``): afterwards the pane title, the window
name and the paste buffers are untouched, the screen shows the sequences as text, and
``events.jsonl`` holds the same visible text and not one control character.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.test_e2e_tmux import COMMAND, ROOT, Tmux, logged, run_dirs
from tests.test_e2e_tmux import tmux as tmux  # the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TITLE = "\x1b]0;SDOWNED-TITLE\x07"
CLIPBOARD = "\x1b]52;c;U0RPV05FRC1DTElQ\x1b\\"  # base64 of SDOWNED-CLIP, ST-terminated
RESET = "\x1bc"
CLEAR = "\x1b[2J\x1b[H"
EVIL = f"{TITLE}{CLIPBOARD}{RESET}{CLEAR}evil"
SHOWN = "␛]0;SDOWNED-TITLE␇"  # how the title change must appear: as text
CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class HostileServer(asyncssh.SSHServer):
    """Lets the first login in, then refuses every other one with a hostile reason."""

    logins = 0

    def __init__(self, client_key: asyncssh.SSHKey) -> None:
        self.client_key = client_key
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        HostileServer.logins += 1
        if HostileServer.logins > 1 and self.conn is not None:
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, f"go away {EVIL}")
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data == self.client_key.public_data


async def _handle(process: asyncssh.SSHServerProcess[str]) -> None:
    conn = process.get_extra_info("connection")
    if process.command is not None:  # a poll command: fail with a hostile stderr
        process.stderr.write(f"{EVIL}\n")
        process.exit(1)
        # Let a few polls and PTY cycles through, then drop the link with a hostile reason
        # (not DISC_BY_APPLICATION: asyncssh takes that for a clean close and drops the reason).
        asyncio.get_running_loop().call_later(
            3.0, conn.disconnect, asyncssh.DISC_SERVICE_NOT_AVAILABLE, f"bye {EVIL}"
        )
        return
    while line := await process.stdin.readline():  # the PTY channel's shell
        if found := re.search(r"__sdend (\d+)", line):
            process.stdout.write(f"{TITLE}{CLIPBOARD}pty output\r\n__sdend_{found[1]}\r\n")
    process.exit(0)


class ServerThread:
    """The hostile server on its own event loop, so the test can wait on tmux synchronously."""

    def __init__(self, host_key: asyncssh.SSHKey, client_key: asyncssh.SSHKey) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        HostileServer.logins = 0

        async def start() -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(
                lambda: HostileServer(client_key),
                "127.0.0.1",
                0,
                server_host_keys=[host_key],
                process_factory=_handle,
            )

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port: int = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[ServerThread, Path]]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(tmp_path / "client_key"))
    (tmp_path / "client_key").chmod(0o600)
    server = ServerThread(host_key, client_key)
    public = host_key.export_public_key().decode().strip()
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{server.port} {public}\n")
    try:
        yield server, tmp_path
    finally:
        server.close()


def test_remote_escape_sequences_never_reach_the_terminal(
    tmux: Tmux, hostile: tuple[ServerThread, Path]
) -> None:
    server, tmp = hostile
    (tmp / "ssh_config").write_text("")  # the operator's own ~/.ssh/config stays out of it
    profile = tmp / "hostile.toml"
    profile.write_text(
        f"""[run]
name = "hostile-ssh"
duration = "60s"

[[ssh]]
name = "evil"
count = 1
target = "127.0.0.1:{server.port}"
user = "{getpass.getuser()}"
auth = "key"
key_file = "{tmp / "client_key"}"
known_hosts = "{tmp / "known_hosts"}"
ssh_config = "{tmp / "ssh_config"}"
poll_interval = "500ms"
poll_commands = ["cat /proc/stat"]
intensity = "low"
pty_interval = "200ms"
reconnect_attempts = 2
backoff = "200ms"
"""
    )
    runs = tmp / "runs"
    go = tmp / "go"
    # The console waits for `go`, so tmux is set up (clipboard on) and the title read before
    # it draws anything.
    shell = (
        f"while [ ! -e {go} ]; do sleep 0.1; done; "
        f"{COMMAND} run {profile} --runs-dir {runs}; echo STRESSDECK-EXIT=$?; sleep 60"
    )
    # A named window: tmux renames it only when told to by an escape (allow-rename), never
    # after the running command, so any change of its name is the remote's doing.
    tmux(
        "new-session", "-d", "-s", "console", "-n", "sdconsole", "-x", "160", "-y", "45",
        "-c", str(ROOT), shell,
    )  # fmt: skip
    tmux("set-option", "-g", "set-clipboard", "on")
    tmux("set-option", "-g", "allow-rename", "on")
    title = tmux("display-message", "-p", "-t", "console", "#{pane_title}").strip()
    assert tmux("display-message", "-p", "-t", "console", "#{window_name}").strip() == "sdconsole"
    go.touch()

    deadline = time.monotonic() + 40
    while True:
        events = logged(run_dirs(runs)[0]) if run_dirs(runs) else []
        names = {e["event"] for e in events}
        if {"exec_poll_error", "connection_lost", "connect_failed"} <= names:
            break
        assert time.monotonic() < deadline, f"the hostile server's texts never came: {names}"
        time.sleep(0.2)
    screen = tmux.wait(lambda s: "connect_failed" in s, "the refusal in the event log")
    time.sleep(1.0)  # a few more frames with every hostile text on screen
    screen = tmux.screen()

    assert tmux("display-message", "-p", "-t", "console", "#{pane_title}").strip() == title
    assert tmux("display-message", "-p", "-t", "console", "#{window_name}").strip() == "sdconsole"
    assert "SDOWNED" not in tmux("list-buffers")  # OSC 52 wrote no clipboard
    assert SHOWN in screen, screen  # shown as text: had tmux obeyed it, the text would be gone

    (run_dir,) = run_dirs(runs)
    wanted = ("exec_poll_error", "connection_lost", "connect_failed")
    deadline = time.monotonic() + 10  # the log is flushed on a 250 ms beat: wait for the lines
    while not all(n in {e["event"] for e in logged(run_dir)} for n in wanted):
        assert time.monotonic() < deadline, "events never reached events.jsonl"
        time.sleep(0.1)
    raw = (run_dir / "events.jsonl").read_text()
    assert "\\u001b" not in raw and not CONTROLS.search(raw.replace("\n", ""))
    details: dict[str, list[str]] = {}
    for e in logged(run_dir):
        details.setdefault(str(e["event"]), []).append(str(e["detail"]))
    for name in wanted:  # at least one of each carried the hostile text, shown as text
        shown = [d for d in details[name] if SHOWN in d and "␛c␛[2J" in d]
        assert shown, (name, details[name])

    tmux.keys("q")
    tmux.wait(lambda s: "Stop the run and quit?" in s, "the quit confirmation")
    tmux.keys("y")
    tmux.wait(lambda s: "STRESSDECK-EXIT=" in s, "the command to exit", timeout=30)
