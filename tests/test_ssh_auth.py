"""SSH sessions against a target they treat as a real host: host keys, names, keys, agent, failure.

The embedded server is started by the test here, so sessions reach it by ``host:port`` and must
verify its host key from a known_hosts file and authenticate with a key file or the agent, as
they would with any host.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from console.engine import Run
from console.targets.ssh_control import EmbeddedSshTarget, SshTargetInfo
from tests.ssh_support import named, run_profile, started_target, wait_all_running, wait_for_state

# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[EmbeddedSshTarget]:
    async with started_target(tmp_path / "host") as server:
        yield server


def group(info: SshTargetInfo, **keys: object) -> str:
    values: dict[str, object] = {
        "name": "h",
        "count": 1,
        "target": f"127.0.0.1:{info.port}",
        "key_file": str(info.client_key),
        "known_hosts": str(info.known_hosts),
        "auth": "key",
        "poll_interval": "1s",
        "pty_interval": "300ms",
        "intensity": "low",
        "backoff": "200ms",
    }
    values.update(keys)
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    return f'[run]\nname = "t"\nduration = "60s"\n\n[[ssh]]\n{body}\n'


async def until_running_then_stop(run: Run) -> None:
    await wait_all_running(run)
    await asyncio.sleep(1.2)
    run.request_stop()


async def stop_when_failed(run: Run) -> None:
    await wait_for_state(run, "h#0", "failed")
    run.request_stop()


async def test_changed_host_key_is_a_clear_failed_state_not_a_retry_loop(
    host: EmbeddedSshTarget, tmp_path: Path
) -> None:
    info = host.info
    assert info is not None
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{info.port} {impostor}")

    async def during(run: Run) -> None:
        await wait_for_state(run, "h#0", "failed")
        await asyncio.sleep(1.0)  # long enough for retries, if there were any
        run.request_stop()

    result, run, events = await run_profile(
        group(info, known_hosts=str(known)), tmp_path, 30, during
    )
    failed = named(events, "connect_failed")
    assert len(failed) == 1 and "host key" in failed[0]["detail"]
    assert not named(events, "connected")
    session = result.snapshot.session("h#0")
    assert session is not None and session.state == "failed"
    assert "host key rejected" in session.badges
    assert result.snapshot.metric("ssh_abnormal_ends").get("count") == 1  # type: ignore[union-attr]
    assert run.kind_figures(result.snapshot)["abnormal_ends"] == 1


async def test_unchecked_host_key_connects_with_a_warning_badge(
    host: EmbeddedSshTarget, tmp_path: Path
) -> None:
    info = host.info
    assert info is not None
    result, _, events = await run_profile(
        group(info, known_hosts="/nonexistent", verify_host_key=False),
        tmp_path,
        30,
        until_running_then_stop,
    )
    assert named(events, "connected")
    session = result.snapshot.session("h#0")
    assert session is not None and session.badges == ("host key unchecked",)


async def test_host_names_resolve_and_targets_repeat_to_fill_the_count(
    host: EmbeddedSshTarget, tmp_path: Path
) -> None:
    info = host.info
    assert info is not None
    # known_hosts has [localhost]:port too, so the name is verified like any other.
    toml = group(
        info, count=3, target="", targets=[f"localhost:{info.port}", f"127.0.0.1:{info.port}"]
    )
    result, _, events = await run_profile(toml, tmp_path, 30, until_running_then_stop)
    targets = [s.target for s in result.snapshot.sessions]
    assert targets == [f"localhost:{info.port}", f"127.0.0.1:{info.port}", f"localhost:{info.port}"]
    assert len(named(events, "connected")) == 3


async def test_ssh_config_alias_supplies_host_and_port(
    host: EmbeddedSshTarget, tmp_path: Path
) -> None:
    info = host.info
    assert info is not None
    config = tmp_path / "ssh_config"
    config.write_text(f"Host sdbox\n  HostName 127.0.0.1\n  Port {info.port}\n  User tester\n")
    _result, _, events = await run_profile(
        group(info, target="sdbox", ssh_config=str(config)), tmp_path, 30, until_running_then_stop
    )
    assert len(named(events, "connected")) == 1, named(events, "connect_failed")


@pytest.mark.parametrize("key_format", ["openssh", "pkcs8"])
async def test_passphrase_comes_from_the_named_variable_and_is_never_logged(
    host: EmbeddedSshTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_format: str
) -> None:
    info = host.info
    assert info is not None
    secret = "correct horse battery staple"
    locked = tmp_path / "locked_key"
    if key_format == "openssh":
        # What `ssh-keygen` writes by default: bcrypt-pbkdf protected (needs the bcrypt package).
        if shutil.which("ssh-keygen") is None:
            pytest.skip("ssh-keygen not installed (apt-get install openssh-client)")
        shutil.copy(info.client_key, locked)
        locked.chmod(0o600)
        subprocess.run(
            ["ssh-keygen", "-q", "-p", "-f", str(locked), "-P", "", "-N", secret],
            check=True,
            capture_output=True,
        )
        assert "BEGIN OPENSSH PRIVATE KEY" in locked.read_text()
    else:
        asyncssh.read_private_key(str(info.client_key)).write_private_key(
            str(locked), format_name="pkcs8-pem", passphrase=secret
        )
    toml = group(info, key_file=str(locked), passphrase_env="SD_TEST_PASSPHRASE")

    monkeypatch.delenv("SD_TEST_PASSPHRASE", raising=False)

    result, _, events = await run_profile(toml, tmp_path / "a", 30, stop_when_failed)
    failed = named(events, "connect_failed")
    assert len(failed) == 1 and "SD_TEST_PASSPHRASE is not set" in failed[0]["detail"]

    monkeypatch.setenv("SD_TEST_PASSPHRASE", secret)
    result, _, events = await run_profile(toml, tmp_path / "b", 30, until_running_then_stop)
    assert named(events, "connected")
    key_body = info.client_key.read_text().splitlines()[1]
    for path in result.run_dir.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".json", ".md", ".xml"):
            text = path.read_text(errors="replace")
            assert secret not in text and key_body not in text, path


@pytest.mark.skipif(shutil.which("ssh-agent") is None, reason="ssh-agent not installed")
async def test_agent_authentication(
    host: EmbeddedSshTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = host.info
    assert info is not None
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            await asyncio.sleep(0.05)
        env = dict(os.environ, SSH_AUTH_SOCK=str(sock))
        subprocess.run(["ssh-add", str(info.client_key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        _, _, events = await run_profile(
            group(info, auth="agent", key_file=""), tmp_path, 30, until_running_then_stop
        )
        assert named(events, "connected"), named(events, "connect_failed")
        # Without the agent, agent-only auth fails clearly instead of trying key files.
        monkeypatch.delenv("SSH_AUTH_SOCK")
        _result, _, events = await run_profile(
            group(info, auth="agent", key_file="", reconnect_attempts=1),
            tmp_path / "no-agent",
            30,
            stop_when_failed,
        )
        assert "SSH_AUTH_SOCK" in named(events, "connect_failed")[0]["detail"]
    finally:
        agent.terminate()
        agent.wait(5)


async def test_reconnect_gives_up_then_a_manual_reconnect_brings_it_back(
    tmp_path: Path,
) -> None:
    state = tmp_path / "host"
    server = EmbeddedSshTarget(state, keep_keys=True)  # the replacement reuses them
    info = await server.start()
    replacement: list[EmbeddedSshTarget] = []

    async def during(run: Run) -> None:
        await wait_all_running(run)
        await server.stop()  # the host goes away for good
        await wait_for_state(run, "h#0", "failed", timeout=20)
        back = EmbeddedSshTarget(state, port=info.port, keep_keys=True)  # same keys and port
        replacement.append(back)
        await back.start()
        await run.inject("ssh.reconnect", target="h#0", source="api")
        await wait_all_running(run)
        run.request_stop()

    try:
        result, run, events = await run_profile(
            group(info, reconnect_attempts=2, reconnect_timeout="1s"), tmp_path, 40, during
        )
    finally:
        await server.stop()
        for back in replacement:
            await back.stop()
    gave_up = named(events, "reconnect_failed")
    assert len(gave_up) == 1 and gave_up[0]["attempt"] == 2 and gave_up[0]["success"] is False
    assert len(named(events, "connect_failed")) == 2
    assert named(events, "reconnected")
    snap = result.snapshot
    assert snap.metric("ssh_reconnect_success").get("rate") == 0.5  # type: ignore[union-attr]
    assert snap.metric("ssh_abnormal_ends").get("count") == 1  # type: ignore[union-attr]
    assert run.kind_figures(snap)["global_reconnect_rate_pct"] == 50.0
