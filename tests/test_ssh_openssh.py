"""SSH sessions against OpenSSH's own ``sshd`` on a loopback port, with throwaway keys and config.

sshd runs in the foreground (``-D -e``) as the current user, from a config in a temporary
directory: its own host key, an authorized_keys file holding a freshly generated client key,
``StrictModes no`` (tmp directories are world-writable) and no PAM. It needs an absolute path
and a privilege-separation directory (/run/sshd), created here when missing and permitted.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from console.engine import Run
from console.sessions.base import FaultNotApplicable
from tests.ssh_support import named, run_profile, wait_all_running, wait_for_state

SSHD = Path("/usr/sbin/sshd")

needs_sshd = pytest.mark.skipif(
    not SSHD.exists(), reason="OpenSSH server not installed (/usr/sbin/sshd missing)"
)
# A real sshd: the full suite, not the fast tier (-m "not slow").
pytestmark = [needs_sshd, pytest.mark.slow]


@dataclass
class Sshd:
    port: int
    client_key: Path
    known_hosts: Path
    host_public: str
    user: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    privsep = Path("/run/sshd")
    if not privsep.exists():
        try:
            privsep.mkdir(mode=0o755, parents=True)
        except OSError as exc:
            pytest.skip(f"sshd needs {privsep} and it cannot be created: {exc}")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(tmp_path / "host_key"))
    os.chmod(tmp_path / "host_key", 0o600)
    client = asyncssh.generate_private_key("ssh-ed25519")
    client.write_private_key(str(tmp_path / "client_key"))
    os.chmod(tmp_path / "client_key", 0o600)
    (tmp_path / "authorized_keys").write_bytes(client.export_public_key())
    port = _free_port()
    host_public = host_key.export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port},[localhost]:{port} {host_public}\n")
    config = tmp_path / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {tmp_path / "host_key"}
PidFile {tmp_path / "sshd.pid"}
AuthorizedKeysFile {tmp_path / "authorized_keys"}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100:30:200
MaxSessions 50
LogLevel ERROR
"""
    )
    log = open(tmp_path / "sshd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(SSHD), "-f", str(config), "-D", "-e"], stderr=log)
    try:
        for _ in range(200):
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {(tmp_path / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                import time

                time.sleep(0.05)
        yield Sshd(port, tmp_path / "client_key", known, host_public, getpass.getuser())
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def profile(d: Sshd, *, count: int = 2, target: str = "", extra: str = "") -> str:
    return f"""
[run]
name = "openssh"
duration = "60s"

[[ssh]]
name = "real"
count = {count}
target = "{target or f"127.0.0.1:{d.port}"}"
user = "{d.user}"
auth = "key"
key_file = "{d.client_key}"
known_hosts = "{d.known_hosts}"
poll_interval = "1s"
pty_interval = "300ms"
intensity = "medium"
backoff = "200ms"
{extra}
"""


async def test_polling_pty_drop_and_auth_failure_against_real_sshd(
    sshd: Sshd, tmp_path: Path
) -> None:
    notes: list[str] = []

    async def during(run: Run) -> None:
        await wait_all_running(run)
        # a positive signal, not a guess: two polls make a CPU delta (slow under load)
        for _ in range(300):
            if any("cpu=" in e.detail for e in run.event_log.recent if e.event == "exec_poll"):
                break
            await asyncio.sleep(0.1)
        await run.inject("ssh.drop", target="all", source="api")
        await asyncio.sleep(0.3)
        await wait_all_running(run)
        # A bogus key for the next attempt: sshd itself refuses it.
        await run.inject("ssh.auth_fail", target="real#1", source="api")
        await asyncio.sleep(0.3)
        await wait_all_running(run)
        try:
            await run.inject("ssh.server_restart", target="all", source="api")
        except FaultNotApplicable as exc:
            notes.append(str(exc))
        await asyncio.sleep(1.0)
        run.request_stop()

    result, run, events = await run_profile(profile(sshd), tmp_path, 60, during)
    assert len(named(events, "connected")) == 2, named(events, "connect_failed")
    polls = named(events, "exec_poll")
    assert polls and any("cpu=" in e["detail"] and "disk=" in e["detail"] for e in polls)
    assert not named(events, "exec_poll_error")
    cycles = named(events, "pty_cycle")
    assert len(cycles) >= 4 and not named(events, "pty_error")
    reconnected = named(events, "reconnected")
    assert len(reconnected) == 3
    auth = [e for e in named(events, "connect_failed") if "authentication" in e["detail"]]
    assert [e["session_id"] for e in auth] == ["real#1"]
    assert reconnected[-1]["session_id"] == "real#1" and reconnected[-1]["attempt"] == 2
    assert notes and "embedded" in notes[0]
    snap = result.snapshot
    cpu = snap.metric("ssh_remote_cpu")
    assert cpu is not None and cpu.get("value") is not None
    session = snap.session("real#0")
    assert session is not None and "ssh.server_restart" not in session.actions
    assert any("stressdeck pty line 20 of 20" in line for line in session.output_tail)
    assert run.kind_figures(snap)["global_reconnect_rate_pct"] == 100.0


async def test_host_name_and_changed_key_against_real_sshd(sshd: Sshd, tmp_path: Path) -> None:
    async def until_running(run: Run) -> None:
        await wait_all_running(run)
        run.request_stop()

    _, _, events = await run_profile(
        profile(sshd, count=1, target=f"localhost:{sshd.port}"),
        tmp_path / "name",
        30,
        until_running,
    )
    assert named(events, "connected"), named(events, "connect_failed")

    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {impostor}")

    async def until_failed(run: Run) -> None:
        await wait_for_state(run, "real#0", "failed")
        await asyncio.sleep(0.8)
        run.request_stop()

    result, _, events = await run_profile(
        profile(sshd, count=1), tmp_path / "changed", 30, until_failed
    )
    failed = named(events, "connect_failed")
    assert len(failed) == 1 and "host key" in failed[0]["detail"]
    session = result.snapshot.session("real#0")
    assert session is not None and session.state == "failed"
