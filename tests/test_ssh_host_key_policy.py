"""Host-key checks against OpenSSH's ``sshd``: an OpenSSH client config can never switch them off.

``UserKnownHostsFile none`` and ``StrictHostKeyChecking no`` make asyncssh connect unverified
when left to itself; Stressdeck keeps verifying (only the profile's ``verify_host_key = false``
turns that off), reads OpenSSH's default files (``known_hosts2`` too), and reports a config it
cannot parse once, naming the file and the line, before any session tries to connect.

HOME points at an empty directory in each test, so the operator's own ``~/.ssh`` stays out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from console.engine import Run
from tests.ssh_support import named, run_profile, wait_all_running, wait_for_state
from tests.test_ssh_openssh import Sshd, needs_sshd
from tests.test_ssh_openssh import sshd as sshd  # the fixture

# Real sshd: the full suite, not the fast tier (-m "not slow").
pytestmark = [needs_sshd, pytest.mark.slow]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def profile(d: Sshd, ssh_config: Path, *, count: int = 1, extra: str = "") -> str:
    return f"""
[run]
name = "hostkeys"
duration = "60s"

[[ssh]]
name = "real"
count = {count}
target = "127.0.0.1:{d.port}"
user = "{d.user}"
auth = "key"
key_file = "{d.client_key}"
ssh_config = "{ssh_config}"
poll_interval = "1s"
intensity = "off"
backoff = "200ms"
reconnect_attempts = 2
{extra}
"""


async def stop_when_failed(run: Run) -> None:
    await wait_for_state(run, "real#0", "failed")
    await asyncio.sleep(0.5)  # long enough for retries, if there were any
    run.request_stop()


async def stop_when_running(run: Run) -> None:
    await wait_all_running(run)
    run.request_stop()


async def test_config_cannot_switch_host_key_checks_off(
    sshd: Sshd, home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    UserKnownHostsFile none\n    StrictHostKeyChecking no\n")
    result, _, events = await run_profile(profile(sshd, config), tmp_path, 30, stop_when_failed)
    assert not named(events, "connected")
    (failed,) = named(events, "connect_failed")
    assert "host key verification failed" in failed["detail"]
    session = result.snapshot.session("real#0")
    assert session is not None and session.state == "failed"
    assert "host key rejected" in session.badges
    assert "host key verification failed" in session.last_event


@pytest.mark.parametrize("where", ["known_hosts2", "named in the config", "despite none"])
async def test_openssh_known_hosts_files_are_honoured(
    sshd: Sshd, home: Path, tmp_path: Path, where: str
) -> None:
    line = f"[127.0.0.1]:{sshd.port} {sshd.host_public}\n"
    config = tmp_path / "ssh_config"
    if where == "named in the config":
        (tmp_path / "pinned").write_text(line)
        config.write_text(f"Host 127.0.0.1\n    UserKnownHostsFile {tmp_path / 'pinned'}\n")
    else:
        (home / ".ssh" / "known_hosts2").write_text(line)
        config.write_text("UserKnownHostsFile none\n" if where == "despite none" else "")
    result, _, events = await run_profile(profile(sshd, config), tmp_path, 30, stop_when_running)
    assert named(events, "connected"), [e["detail"] for e in named(events, "connect_failed")]
    session = result.snapshot.session("real#0")
    assert session is not None and not session.badges


async def test_unparseable_config_is_one_clear_error_before_sessions_start(
    sshd: Sshd, home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text('Host example\n    Port 2200\n\nMatch exec "test 1 = 1"\n    User nobody\n')

    async def stop_soon(run: Run) -> None:
        for session_id in ("real#0", "real#1"):
            await wait_for_state(run, session_id, "failed")
        await asyncio.sleep(0.5)
        run.request_stop()

    result, _, events = await run_profile(profile(sshd, config, count=2), tmp_path, 30, stop_soon)
    (error,) = named(events, "ssh_config_error")
    assert error["detail"].startswith(f"SSH config {config} line 4: ")
    assert 'Match exec "test 1 = 1"' in error["detail"]
    assert not named(events, "connect_failed") and not named(events, "connected")
    for session_id in ("real#0", "real#1"):
        session = result.snapshot.session(session_id)
        assert session is not None and session.state == "failed"
        assert "ssh config error" in session.badges
        assert f"{config} line 4" in session.last_event
    assert result.snapshot.metric("ssh_abnormal_ends").get("count") == 2  # type: ignore[union-attr]
