"""Issue 9, security: another local user reads nothing of a run, no run file holds a secret,
no child inherits one, and the embedded SSH target's keys never outlive their run.

The second local user is real: a Python process running as ``nobody`` (setpriv) polls the
runs directory for the whole length of a run with the embedded SSH target, trying to list
every directory and read every file it can name.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.engine import Run
from console.files import new_private_dir, open_private, private_dir, write_private
from console.profile import load_profile_text
from console.secrets import Secrets
from console.sessions.http.session import HttpSession
from console.targets.http_control import EmbeddedTarget
from tests.ssh_support import run_profile, wait_all_running

ROOT = Path(__file__).resolve().parents[1]

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run a process as another user",
)

# Runs as `nobody`: every path it manages to list or read is a leak.
POLLER = r"""
import json, os, sys, time
runs, stop = sys.argv[1], sys.argv[2]
names = ["events.jsonl", "report.md", "report.html", "junit.xml", "snapshot-1.json", "snapshot-2.json",
         "ssh-target/client_ed25519_key", "ssh-target/ssh_host_ed25519_key",
         "ssh-target/client_ed25519_key.pub", "ssh-target/known_hosts",
         "ssh-target/server.log", "output/shell#0.log"]
attempts, leaks, runs_seen = 0, set(), set()
deadline = time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < deadline:
    try:
        entries = [e for e in os.listdir(runs) if not e.startswith((".", "stop"))]
    except OSError:
        entries = []
    for entry in entries:
        run = os.path.join(runs, entry)
        runs_seen.add(entry)
        for sub in ("", "ssh-target", "output"):
            try:
                os.listdir(os.path.join(run, sub))
                leaks.add("listed " + os.path.join(entry, sub))
            except OSError:
                pass
        for name in names:
            path = os.path.join(run, name)
            attempts += 1
            if os.access(path, os.R_OK):
                leaks.add("access " + name)
            try:
                with open(path, "rb") as f:
                    f.read(1)
                leaks.add("read " + name)
            except OSError:
                pass
    time.sleep(0.002)
print(json.dumps({"attempts": attempts, "leaks": sorted(leaks), "runs": sorted(runs_seen)}))
"""


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every local user may traverse, as /tmp or a shared project directory is
    (pytest's own tmp_path is 0700, which would hide every leak)."""
    path = Path(tempfile.mkdtemp(prefix="sd-shared-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _modes_watcher(runs: Path, stop: threading.Event, bad: list[str]) -> None:
    """The owner's view, polled as fast as it goes: any directory not 0700 or file not 0600."""
    while not stop.is_set():
        for root, _dirs, files in os.walk(runs):
            if Path(root) == runs:
                continue
            for name, want in [(root, 0o700)] + [(os.path.join(root, f), 0o600) for f in files]:
                try:
                    mode = stat.S_IMODE(os.lstat(name).st_mode)
                except FileNotFoundError:
                    continue
                if mode & ~want:
                    bad.append(f"{name} {mode:o}")


@needs_root
async def test_another_local_user_reads_nothing_of_a_run_with_the_embedded_ssh_target(
    shared_dir: Path,
) -> None:
    runs = shared_dir / "runs"
    runs.mkdir(mode=0o755)
    runs.chmod(0o755)
    poller = shared_dir / "poller.py"
    poller.write_text(POLLER)
    poller.chmod(0o644)
    stop_file = runs / "stop"
    spy = subprocess.Popen(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         sys.executable, "-I", str(poller), str(runs), str(stop_file)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    bad: list[str] = []
    watching = threading.Event()
    watcher = threading.Thread(target=_modes_watcher, args=(runs, watching, bad), daemon=True)
    watcher.start()
    toml = """
[run]
name = "shared"
snapshot_interval = "1s"

[[ssh]]
name = "pool"
count = 2
target = "embedded"
poll_interval = "300ms"
intensity = "low"

[[pty]]
name = "shell"
command = "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.2; done; sleep 30"
keep_output = true
"""

    async def during(run: Run) -> None:
        await wait_all_running(run)
        await asyncio.sleep(3.0)
        run.request_stop()

    try:
        result, _run, _ = await run_profile(toml, runs, 30, during)
    finally:
        watching.set()
        watcher.join(10)
        stop_file.touch()
        out, _ = spy.communicate(timeout=30)
    report = json.loads(out)
    assert report["runs"] == [result.run_dir.name], report  # it saw the run directory...
    assert report["attempts"] > 100, report
    assert report["leaks"] == [], report  # ...and got nothing out of it
    assert bad == [], bad[:10]
    assert stat.S_IMODE(result.run_dir.stat().st_mode) == 0o700
    state = result.run_dir / "ssh-target"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert (result.run_dir / "output" / "shell#0.log").stat().st_size > 0
    # The client key logged in as the operator: it is gone with the run.
    assert not list(state.glob("*_ed25519_key*")), sorted(p.name for p in state.iterdir())
    for path in result.run_dir.rglob("*"):
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path


async def test_keep_target_keys_keeps_them_private(tmp_path: Path) -> None:
    toml = """
[run]
name = "keep"

[[ssh]]
name = "pool"
count = 1
target = "embedded"
poll_interval = "300ms"
intensity = "off"
keep_target_keys = true
"""

    async def during(run: Run) -> None:
        await wait_all_running(run)
        run.request_stop()

    result, _, _ = await run_profile(toml, tmp_path, 20, during)
    key = result.run_dir / "ssh-target" / "client_ed25519_key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600


def test_target_ssh_command_leaves_no_key_directory_behind(tmp_path: Path) -> None:
    """`stressdeck target ssh` without --state-dir: private temporary keys, gone at exit."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp), PYTHONPATH=str(ROOT))
    with subprocess.Popen(
        [sys.executable, "-m", "console", "target", "ssh"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    ) as proc:  # closes the pipes: nothing leaks past the test
        assert proc.stdin is not None and proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        key = Path(info["client_key"])
        assert key.parent.parent == temp
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        proc.stdin.write(b'{"cmd": "quit"}\n')
        proc.stdin.flush()
        assert proc.wait(20) == 0
    assert list(temp.iterdir()) == []


# -- secrets in run files ------------------------------------------------------------------------

SECRETS = {
    "SD_TEST_TOKEN": "envtoken-4b1e9a7c",  # an env-sourced Authorization header
    "SD_TEST_APIKEY": "apikey-77c2d0e3",  # an env-sourced custom auth header
    "SD_TEST_PASSWORD": "jsonpw-5e8f1a2b",  # an env-sourced JSON body field
    "SD_TEST_PASSPHRASE": "passphrase-9d3c6b1f",  # passphrase_env
}
LITERALS = {
    "userinfo": "urlpw-31f7c9a4",
    "query": "querytok-8a2b4c6d",
    "body": "bodysecret-2c4e6a8b",
    "check": "checkvalue-6f1d3b5a",
    "table": "tablesecret-0a9b8c7d",
}


def _secrets_profile(port: int) -> str:
    return f"""
[run]
name = "secrets"
snapshot_interval = "1s"

[[http]]
name = "api"
count = 1
base_url = "http://operator:{LITERALS["userinfo"]}@127.0.0.1:{port}"
vus = 1
env = {{ SD_TABLE = "{LITERALS["table"]}" }}

  [[http.steps]]
  request = {{ method = "POST", url = "/api/auth/login", json = {{ username = "u-${{vu}}", password = "${{env.SD_TEST_PASSWORD}}" }}, headers = {{ Authorization = "Bearer ${{env.SD_TEST_TOKEN}}", X-Team-Key = "${{env.SD_TEST_APIKEY}}", X-Table = "${{env.SD_TABLE}}" }} }}
  checks = [{{ json_path = "token", equals = "{LITERALS["check"]}" }}]

  [[http.steps]]
  request = {{ method = "POST", url = "/health?token={LITERALS["query"]}&page=2", body = "{LITERALS["body"]}" }}
  sleep = "100ms"

[[ssh]]
name = "pool"
count = 1
target = "embedded"
poll_interval = "500ms"
intensity = "off"
passphrase_env = "SD_TEST_PASSPHRASE"

[[pty]]
name = "printenv"
command = "env; sleep 30"
keep_output = true
"""


async def test_run_files_hold_no_secret_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with EmbeddedTarget() as target:
        port = int(target.url.rsplit(":", 1)[1].strip("/"))

        async def during(run: Run) -> None:
            await wait_all_running(run)
            await asyncio.sleep(2.5)
            run.request_stop()

        result, run, _events = await run_profile(_secrets_profile(port), tmp_path, 30, during)
    http = run.sessions["api#0"]
    assert isinstance(http, HttpSession)
    assert http.totals.get("http_reqs", 0) > 4  # the requests really carried the secrets
    files = [p for p in result.run_dir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"events.jsonl", "report.md", "report.html", "junit.xml", "snapshot-1.json"} <= names, (
        names
    )
    assert "printenv#0.log" in names  # the program printed its whole environment
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        for value in [*SECRETS.values(), *LITERALS.values()]:
            assert value not in text, f"{value} in {path.relative_to(result.run_dir)}"
    snapshot = json.loads((result.run_dir / "snapshot-1.json").read_text())
    content = json.dumps(snapshot["profile"]["content"])
    assert "SD_TEST_PASSPHRASE" in content  # names of secrets stay: the report needs them
    assert "page=2" in content  # and so does what is not secret


async def test_pty_child_environment_holds_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SD_TEST_PASSPHRASE", "passphrase-in-env-1")
    monkeypatch.setenv("SD_TEST_REFERENCED", "referenced-in-env-2")
    monkeypatch.setenv("SD_TEST_HARMLESS", "harmless-3")
    toml = """
[run]
name = "environ"

[[ssh]]
name = "pool"
count = 1
target = "embedded"
poll_interval = "500ms"
intensity = "off"
passphrase_env = "SD_TEST_PASSPHRASE"

[[pty]]
name = "plain"
command = ["sleep", "30"]

[[pty]]
name = "given"
command = ["sleep", "30"]
env = { TOKEN = "${env.SD_TEST_REFERENCED}" }
"""
    environs: dict[str, bytes] = {}

    async def during(run: Run) -> None:
        await wait_all_running(run)
        for sid in ("plain#0", "given#0"):
            pid = run.sessions[sid].pid  # type: ignore[attr-defined]
            environs[sid] = Path(f"/proc/{pid}/environ").read_bytes()
        target = run.runtimes["ssh"].target  # type: ignore[attr-defined]
        environs["target"] = Path(f"/proc/{target.info.pid}/environ").read_bytes()
        run.request_stop()

    await run_profile(toml, tmp_path, 20, during)
    for where, raw in environs.items():
        variables = dict(v.split(b"=", 1) for v in raw.split(b"\0") if b"=" in v)
        assert b"passphrase-in-env-1" not in raw, where
        assert b"SD_TEST_PASSPHRASE" not in variables, where
        assert b"SD_TEST_REFERENCED" not in variables, where
        assert variables.get(b"SD_TEST_HARMLESS") == b"harmless-3", where  # the rest is kept
    # Passed explicitly by the profile: that one child gets it, under the name it chose.
    assert b"TOKEN=referenced-in-env-2" in environs["given#0"].split(b"\0")
    assert b"referenced-in-env-2" not in environs["plain#0"]


# -- the pieces ----------------------------------------------------------------------------------


def test_private_files_are_private_from_creation_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        run_dir = private_dir(tmp_path / "a" / "b")
        fd = open_private(run_dir / "log")
        os.close(fd)
        write_private(run_dir / "report", "x")
        with pytest.raises(FileExistsError):
            write_private(run_dir / "report", "y", exclusive=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    for name in ("log", "report"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in run_dir.iterdir()) == ["log", "report"]  # no temporary left


def test_open_private_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "events.jsonl").symlink_to(victim)
    with pytest.raises(OSError):
        open_private(tmp_path / "events.jsonl")
    assert victim.read_text() == "keep"


def test_redactor_masks_values_urls_queries_and_headers() -> None:
    profile = load_profile_text(
        """
[[http]]
name = "g"
base_url = "https://bob:hunter22@example.test"
env = { K = "from-table-1" }
  [[http.steps]]
  request = { url = "/x?api_key=qk-123456&n=1", headers = { X-Custom-Auth = "hdr-abcdef", Accept = "json" } }
  checks = [{ json_path = "a", equals = "true" }, { json_path = "b", equals = "long-check-value" }]
""",
        name="r",
    )
    secrets = Secrets.from_profile(profile, environ={})
    text = secrets.text(
        "GET https://bob:hunter22@example.test/x?api_key=qk-123456&n=1 hdr-abcdef "
        "from-table-1 long-check-value equals true"
    )
    for value in ("hunter22", "qk-123456", "hdr-abcdef", "from-table-1", "long-check-value"):
        assert value not in text
    assert "n=1" in text and "equals true" in text  # short literals and plain values stay


def test_a_planted_run_directory_is_never_used(tmp_path: Path) -> None:
    planted = tmp_path / "runs" / "20260101T000000Z-p"
    planted.mkdir(parents=True, mode=0o777)
    made = new_private_dir(planted)
    assert made == planted.with_name("20260101T000000Z-p-2")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_shared_runs_directory_keeps_its_mode(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o755)
    runs.chmod(0o755)
    made = new_private_dir(runs / "r")
    assert stat.S_IMODE(runs.stat().st_mode) == 0o755  # the user's choice, not ours
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    private_dir(keys, tighten=True)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
