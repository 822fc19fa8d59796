"""The embedded SSH server, in its own process, driven by asyncssh and by OpenSSH's ``ssh``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from console.targets.ssh_control import EmbeddedSshTarget, SshTargetInfo, TargetUnavailable
from tests.ssh_support import started_target

ROOT = Path(__file__).resolve().parent.parent


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[EmbeddedSshTarget]:
    async with started_target(tmp_path / "target") as server:
        yield server


async def _connect(info: SshTargetInfo, **kw: object) -> asyncssh.SSHClientConnection:
    options: dict[str, object] = {
        "username": "anyone",
        "client_keys": [str(info.client_key)],
        "known_hosts": str(info.known_hosts),
        "agent_path": None,
    }
    options.update(kw)
    return await asyncssh.connect(info.host, info.port, **options)


async def test_exec_runs_real_commands_and_reports_exit_status(
    target: EmbeddedSshTarget,
) -> None:
    info = target.info
    assert info is not None and info.host == "127.0.0.1" and info.port > 0
    assert info.host_key_fingerprint.startswith("SHA256:")
    async with await _connect(info) as conn:
        result = await conn.run("head -1 /proc/stat; echo oops >&2; exit 3", check=False)
        assert str(result.stdout).startswith("cpu ")
        assert str(result.stderr) == "oops\n"
        assert result.exit_status == 3
        # Input reaches the command, and its pid is a real process of this machine.
        result = await conn.run("cat; echo $$", input="hello\n", check=False)
        lines = str(result.stdout).splitlines()
        assert lines[0] == "hello" and lines[1].isdigit()


async def test_pty_session_has_a_real_terminal(target: EmbeddedSshTarget) -> None:
    assert target.info is not None
    async with await _connect(target.info) as conn:
        result = await conn.run("tty; stty size", term_type="xterm", term_size=(90, 33))
        out = str(result.stdout)
        assert "/dev/pts/" in out and "33 90" in out
        shell = await conn.create_process(term_type="xterm")
        shell.stdin.write("echo $((6*7))\n")
        seen = ""
        while "42\r\n" not in seen:
            seen += await asyncio.wait_for(shell.stdout.read(1024), 5)
        shell.close()


async def test_only_the_generated_client_key_and_pinned_host_key_work(
    target: EmbeddedSshTarget, tmp_path: Path
) -> None:
    info = target.info
    assert info is not None
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await _connect(info, client_keys=[stranger])
    other_host = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await _connect(info, known_hosts=([other_host], [], []))


async def test_auth_fail_control_rejects_the_next_n_logins(target: EmbeddedSshTarget) -> None:
    info = target.info
    assert info is not None
    reply = await target.auth_fail(2)
    assert reply == {"ok": True, "cmd": "auth_fail", "pending": 2}
    for _ in range(2):
        with pytest.raises(asyncssh.PermissionDenied):
            await _connect(info)
    async with await _connect(info) as conn:
        assert (await conn.run("echo ok")).stdout == "ok\n"
    stats = await target.command("stats")
    assert stats["auth_rejected"] == 2 and stats["auth_ok"] >= 1


async def test_a_late_answer_is_not_taken_for_the_next_one(target: EmbeddedSshTarget) -> None:
    """A command that timed out must not hand its late answer to the next command."""
    info = target.info
    assert info is not None
    os.kill(info.pid, signal.SIGSTOP)  # alive but silent: the answer comes only after SIGCONT
    try:
        with pytest.raises(TargetUnavailable, match="no answer"):
            await target.command("stats", timeout=0.3)
    finally:
        os.kill(info.pid, signal.SIGCONT)
    await asyncio.sleep(0.3)  # the stale "stats" answer arrives in the meantime
    assert await target.auth_fail(3) == {"ok": True, "cmd": "auth_fail", "pending": 3}
    assert (await target.command("stats"))["cmd"] == "stats"


async def test_a_dead_target_fails_commands_promptly(target: EmbeddedSshTarget) -> None:
    info = target.info
    assert info is not None
    os.kill(info.pid, signal.SIGKILL)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):  # racing the pipe's closing, then after it
        with pytest.raises(TargetUnavailable):
            await target.command("stats")
        await asyncio.sleep(0.2)
    assert loop.time() - started < 5.0


async def test_restart_drops_everyone_and_comes_back_on_the_same_port(
    target: EmbeddedSshTarget,
) -> None:
    info = target.info
    assert info is not None
    conn = await _connect(info)
    shell = await conn.create_process("sleep 60")
    loop = asyncio.get_running_loop()
    reply = await target.restart(1.0)
    assert reply["ok"] and reply["dropped"] == 1
    await asyncio.wait_for(conn.wait_closed(), 5)  # dropped at once, not at the next keepalive
    assert shell.exit_status is None
    with pytest.raises(OSError):
        await _connect(info)  # down: nobody listens
    started = loop.time()
    while True:
        try:
            again = await _connect(info)
            break
        except OSError:
            assert loop.time() - started < 5, "the target never came back"
            await asyncio.sleep(0.1)
    assert loop.time() - started > 0.5
    assert target.info is not None and target.info.port == info.port
    async with again:
        assert (await again.run("echo back")).stdout == "back\n"


async def test_keys_are_reused_from_the_state_dir(tmp_path: Path) -> None:
    first = EmbeddedSshTarget(tmp_path / "s", keep_keys=True)
    info1 = await first.start()
    await first.stop()
    second = EmbeddedSshTarget(tmp_path / "s", keep_keys=True)
    info2 = await second.start()
    await second.stop()
    assert info1.host_key_fingerprint == info2.host_key_fingerprint
    assert info1.client_key.read_bytes() == info2.client_key.read_bytes()


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client (ssh) not installed")
async def test_openssh_client_accepts_the_known_hosts_file(target: EmbeddedSshTarget) -> None:
    info = target.info
    assert info is not None
    proc = await asyncio.create_subprocess_exec(
        "ssh",
        "-p",
        str(info.port),
        "-i",
        str(info.client_key),
        "-o",
        f"UserKnownHostsFile={info.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-F",
        "/dev/null",
        "localhost",
        "df -h / | tail -1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
    assert "%" in out.decode()


def test_cli_main_prints_one_json_line_and_exits_on_quit(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "console.targets.ssh_server", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdin is not None
            record = json.loads(proc.stdout.readline())
            assert record["event"] == "ready" and record["port"] > 0
            assert (
                Path(record["known_hosts"]).read_text().startswith(f"[127.0.0.1]:{record['port']}")
            )
            # console.children's protocol: a command with an id gets one answer with it
            proc.stdin.write('{"cmd": "nonsense", "id": 1}\n{"cmd": "quit", "id": 2}\n')
            proc.stdin.flush()
            bad = json.loads(proc.stdout.readline())
            assert bad["ok"] is False and bad["id"] == 1 and "nonsense" in bad["error"]
            assert json.loads(proc.stdout.readline()) == {"ok": True, "cmd": "quit", "id": 2}
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            proc.wait()


def test_cli_refuses_non_loopback_addresses() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "console.targets.ssh_server", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2 and "loopback" in proc.stderr


@pytest.mark.parametrize(("intensity", "lines"), [("low", 5), ("medium", 20), ("high", 200)])
async def test_pty_cycles_carry_the_spikes_intensities(
    target: EmbeddedSshTarget, intensity: str, lines: int
) -> None:
    from console.sessions.ssh.channel import PtyChannel

    assert target.info is not None
    counted: list[int] = []
    channel = PtyChannel(intensity, counted.append)
    async with await _connect(target.info) as conn:
        await channel.open(conn)
        nbytes, elapsed_ms = await channel.cycle(10.0)
        assert nbytes > 0 and elapsed_ms < 10_000
        channel.close()
    text = bytes(channel.screen).decode()
    # Output lines only: the terminal's echo of the typed command has "$i" or "| head" instead,
    # and a prompt may precede the first line when the command was typed ahead of it.
    pattern = r"stressdeck pty burst line\r?$" if intensity == "high" else r"pty line \d+ of \d+"
    shown = re.findall(pattern, text, flags=re.MULTILINE)
    assert len(shown) == lines
    assert sum(counted) == nbytes >= lines * 20
    assert "__sdend_1" in text


async def test_pty_cycles_compile_no_pattern_of_their_own(target: EmbeddedSshTarget) -> None:
    """A cycle's end is found by one module pattern: one compiled per cycle filled re's cache,
    ~200 patterns over a 30-minute soak."""
    import gc

    from console.sessions.ssh.channel import PtyChannel

    def patterns() -> int:
        return sum(isinstance(o, re.Pattern) for o in gc.get_objects())

    assert target.info is not None
    channel = PtyChannel("low", lambda n: None)
    async with await _connect(target.info) as conn:
        await channel.open(conn)
        await channel.cycle(10.0)  # whatever the first one loads
        before = patterns()
        for _ in range(20):
            await channel.cycle(10.0)
        channel.close()
    assert patterns() - before < 5
    assert "__sdend_21" in bytes(channel.screen).decode()
