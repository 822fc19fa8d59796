"""Every bad value is an error before anything starts: exit 2, ``file:line: key: message``, no
traceback, no run directory (issue 9). One row per bad input, with the exact message expected.

The whole table goes through ``stressdeck validate`` in-process (the same ``main`` the command
runs); a sample of it goes through the real ``stressdeck run --headless`` in a subprocess, which
must not create a run directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main

PTY = '[[pty]]\ncommand = ["true"]\n'
HTTP = "[[http]]\n"
CRIT = '[[criteria]]\nmetric = "session_abnormal_ends"\nthreshold = "count==0"\n'

# (id, profile text, line, key, message); line/key None when the issue is about the whole file.
CASES: list[tuple[str, str, int | None, str | None, str]] = [
    (
        "group-name-escape",  # drawn as it is: an escape would act on the operator's terminal
        '[[http]]\nname = "api\\u001b]0;owned\\u0007"\n',
        2,
        "http[0].name",
        "must be printable text, got 'api\\x1b]0;owned\\x07'",
    ),
    (
        "group-name-space",  # typed as one word on the command line and before '#' in an id
        '[[http]]\nname = "my api"\n',
        2,
        "http[0].name",
        "must be one word without '#' (it is typed as a fault target), got 'my api'",
    ),
    (
        "group-name-hash",
        '[[pty]]\nname = "w#1"\ncommand = ["true"]\n',
        2,
        "pty[0].name",
        "must be one word without '#' (it is typed as a fault target), got 'w#1'",
    ),
    (
        "group-name-all",
        '[[pty]]\nname = "all"\ncommand = ["true"]\n',
        2,
        "pty[0].name",
        "must not be 'all': as a fault target it means every session of the kind",
    ),
    (
        "run-name-bidi",
        '[run]\nname = "run\\u202egpj"\n' + PTY,
        2,
        "run.name",
        "must be printable text, got 'run\\u202egpj'",
    ),
    (
        "run-name-path",  # it names the run directory: no way out of the runs directory
        '[run]\nname = "../../escaped"\n' + PTY,
        2,
        "run.name",
        "must not contain '/' (it names the run directory), got '../../escaped'",
    ),
    (
        "duration-nan",
        "[run]\nduration = nan\n" + PTY,
        2,
        "run.duration",
        "a duration must be a finite number, got nan",
    ),
    (
        "duration-inf",
        "[run]\nduration = inf\n" + PTY,
        2,
        "run.duration",
        "a duration must be a finite number, got inf",
    ),
    (
        "duration-zero",
        '[run]\nduration = "0s"\n' + PTY,
        2,
        "run.duration",
        "must be more than 0s, got 0s",
    ),
    (
        "duration-year",
        '[run]\nduration = "365d"\n' + PTY,
        2,
        "run.duration",
        "must be at most 30d, got 365d",
    ),
    (
        "snapshot-interval-zero",
        "[run]\nsnapshot_interval = 0\n" + PTY,
        2,
        "run.snapshot_interval",
        "must be at least 50ms, got 0s",
    ),
    (
        "every-1us",
        PTY + '[[faults]]\nat = "1s"\nevery = "1us"\naction = "pty.kill"\n',
        5,
        "faults[0].every",
        "must be at least 100ms, got 1us",
    ),
    (
        "fault-at-nan",
        PTY + '[[faults]]\nat = "nan"\naction = "pty.kill"\n',
        4,
        "faults[0].at",
        "bad duration 'nan': expected a number with a unit (us, ms, s, m, h, d), such as '500ms', '5s' or '30m'",
    ),
    (
        "pick-zero",
        PTY + '[[faults]]\naction = "pty.kill"\npick = 0\n',
        5,
        "faults[0].pick",
        "must be at least 1, got 0",
    ),
    (
        "ssh-port-letters",
        '[[ssh]]\ntarget = "host:abc"\n',
        2,
        "ssh[0].target",
        "bad port in SSH target 'host:abc': expected a number 1..65535",
    ),
    (
        "ssh-port-zero",
        '[[ssh]]\ntargets = ["a:22", "b:0"]\n',
        2,
        "ssh[0].targets",
        "bad port in SSH target 'b:0': expected a number 1..65535",
    ),
    (
        "ssh-port-v6",
        '[[ssh]]\ntarget = "[::1]:x"\n',
        2,
        "ssh[0].target",
        "bad port in SSH target '[::1]:x': expected a number 1..65535",
    ),
    (
        "ssh-no-host",
        '[[ssh]]\ntarget = ":22"\n',
        2,
        "ssh[0].target",
        "bad SSH target ':22': no host before the port",
    ),
    (
        "ssh-jitter",
        '[[ssh]]\njitter = "500%"\n',
        2,
        "ssh[0].jitter",
        "must be at most 100%, got 500%",
    ),
    (
        "ssh-keepalive-count",
        "[[ssh]]\nkeepalive_count_max = 0\n",
        2,
        "ssh[0].keepalive_count_max",
        "must be at least 1, got 0",
    ),
    (
        "rate-negative",
        HTTP + 'executor = "constant-arrival-rate"\nrate = -5\n',
        3,
        "http[0].rate",
        "must be more than 0, got -5",
    ),
    (
        "rate-huge",
        HTTP + 'executor = "constant-arrival-rate"\nrate = 1e12\n',
        3,
        "http[0].rate",
        "must be at most 1e+06, got 1e+12",
    ),
    (
        "base-url-ftp",
        HTTP + 'base_url = "ftp://example.com"\n',
        2,
        "http[0].base_url",
        "'ftp://example.com': expected 'embedded' or an http:// or https:// URL",
    ),
    (
        "base-url-no-host",
        HTTP + 'url = "http://"\n',
        2,
        "http[0].url",
        "'http://': the URL has no host",
    ),
    (
        "base-url-bad-port",
        HTTP + 'base_url = "http://127.0.0.1:99999"\n',
        2,
        "http[0].base_url",
        "bad URL 'http://127.0.0.1:99999': Port out of range 0-65535",
    ),
    (
        "vus-absurd",
        HTTP + "vus = 100000000\n",
        2,
        "http[0].vus",
        "must be at most 10000, got 1e+08",
    ),
    ("vus-negative", HTTP + "vus = -1\n", 2, "http[0].vus", "must be at least 0, got -1"),
    (
        "time-unit-zero",
        HTTP + 'time_unit = "0s"\n',
        2,
        "http[0].time_unit",
        "must be at least 1ms, got 0s",
    ),
    (
        "stage-target-nan",
        HTTP + 'executor = "ramping-vus"\nstages = [{ duration = "1s", target = nan }]\n',
        3,
        "http[0].stages[0].target",
        "expected a finite number, got nan",
    ),
    (
        "expect-status",
        HTTP + '[[http.steps]]\nrequest = { url = "/", expect = [200, 999] }\n',
        3,
        "http[0].steps[0].request.expect",
        "999 is not an HTTP status (100..599)",
    ),
    (
        "request-url-empty",
        HTTP + '[[http.steps]]\nrequest = { url = "" }\n',
        3,
        "http[0].steps[0].request.url",
        "must not be empty",
    ),
    ("cols-zero", PTY + "cols = 0\n", 3, "pty[0].cols", "must be at least 10, got 0"),
    ("rows-negative", PTY + "rows = -3\n", 3, "pty[0].rows", "must be at least 2, got -3"),
    ("command-empty-list", "[[pty]]\ncommand = []\n", 2, "pty[0].command", "must not be empty"),
    ("command-empty-string", '[[pty]]\ncommand = " "\n', 2, "pty[0].command", "must not be empty"),
    (
        "command-empty-program",
        '[[pty]]\ncommand = ["", "x"]\n',
        2,
        "pty[0].command",
        "the program name is empty",
    ),
    (
        "count-absurd",
        PTY + "count = 100000000\n",
        3,
        "pty[0].count",
        "must be at most 1000, got 1e+08",
    ),
    ("count-zero", PTY + "count = 0\n", 3, "pty[0].count", "must be at least 1, got 0"),
    (
        "display-bytes-absurd",
        PTY + 'display_bytes = "100GB"\n',
        3,
        "pty[0].display_bytes",
        "must be at most 64MiB, got 100GB",
    ),
    (
        "input-interval-zero",
        PTY + 'input = ["x"]\ninput_repeat = true\ninput_interval = 0\n',
        5,
        "pty[0].input_interval",
        "must be at least 10ms, got 0s",
    ),
    (
        "window-zero",
        PTY + CRIT + 'window = "0s"\n',
        6,
        "criteria[0].window",
        "must be at least 1s, got 0s",
    ),
    (
        "within-zero",
        PTY + '[[criteria]]\nafter = "pty.kill"\nwithin = "0s"\nthreshold = "rate>=90%"\n',
        5,
        "criteria[0].within",
        "must be more than 0s, got 0s",
    ),
    (
        "threshold-empty",
        PTY + '[[criteria]]\nmetric = "session_abnormal_ends"\nthreshold = ""\n',
        5,
        "criteria[0].threshold",
        "must not be empty",
    ),
    (
        "threshold-bad-percentile",
        PTY + '[[criteria]]\nmetric = "console_loop_lag"\nthreshold = "p(1.2.3)<1"\n',
        5,
        "criteria[0].threshold",
        "bad threshold 'p(1.2.3)<1': 'p(1.2.3)' is not a percentile: expected p(N) with N a number 0..100",
    ),
    (
        "key-taken",
        PTY + '[keys]\nkill = "q"\n',
        4,
        "keys.kill",
        "'q' is already the key of 'quit'; remap that binding too or pick a free key",
    ),
    (
        "key-taken-by-the-grid",
        PTY + '[keys]\nkill = "K,k"\n',
        4,
        "keys.kill",
        "'k' is already the key of 'grid.up'; remap that binding too or pick a free key",
    ),
    (
        "threshold-triple-operator",
        PTY + '[[criteria]]\nmetric = "session_abnormal_ends"\nthreshold = "count=1"\n',
        5,
        "criteria[0].threshold",
        "bad threshold 'count=1': expected an aggregation, a comparison and a value, such as 'p(95)<2000' or 'rate<0.01'",
    ),
    (
        "fault-param-nan",
        '[[ssh]]\n[[faults]]\naction = "ssh.server_restart"\nparams = { down = nan }\n',
        4,
        "faults[0].params.down",
        "a duration must be a finite number, got nan",
    ),
    # http.set_rate is bounded as the command line and the session bound it (0 < rate <= 1e6)
    (
        "set-rate-negative",
        HTTP + '[[faults]]\naction = "http.set_rate"\nparams = { rate = -5 }\n',
        4,
        "faults[0].params.rate",
        "a rate cannot be negative",
    ),
    (
        "set-rate-nan",
        HTTP + '[[faults]]\naction = "http.set_rate"\nparams = { rate = nan }\n',
        4,
        "faults[0].params.rate",
        "a rate must be a finite number, got nan",
    ),
    (
        "set-rate-zero",
        HTTP + '[[faults]]\naction = "http.set_rate"\nparams = { rate = 0 }\n',
        4,
        "faults[0].params.rate",
        "must be more than 0/s, got 0/s",
    ),
    (
        "set-rate-above-limit",
        HTTP + '[[faults]]\naction = "http.set_rate"\nparams = { rate = "2000000/s" }\n',
        4,
        "faults[0].params.rate",
        "must be at most 1000000/s, got 2000000/s",
    ),
    (
        "set-rate-missing",
        HTTP + '[[faults]]\nat = "5s"\naction = "http.set_rate"\n',
        2,  # no params: the entry's line
        "faults[0].params.rate",
        "missing required parameter 'rate'",
    ),
    (
        "chaos-set-rate-above-limit",
        HTTP
        + '[[chaos]]\nrate = "1/m"\n'
        + 'menu = [{ action = "http.set_rate", params = { rate = 1e7 } }]\n',
        4,
        "chaos[0].menu[0].params.rate",
        "must be at most 1000000/s, got 10000000/s",
    ),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path


def expected(path: Path, line: int | None, key: str | None, message: str) -> str:
    where = f"{path}:{line}" if line else str(path)
    return f"stressdeck: invalid profile\n{where}: {key + ': ' if key else ''}{message}\n"


@pytest.mark.parametrize(
    ("text", "line", "key", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_value_is_exit_2_with_file_line_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    key: str,
    message: str,
) -> None:
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == expected(path, line, key, message)


def _special_files(tmp_path: Path) -> dict[str, tuple[Path, int | None, str]]:
    directory = tmp_path / "adir.toml"
    directory.mkdir()
    loop_a, loop_b = tmp_path / "loop_a.toml", tmp_path / "loop_b.toml"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "gone.toml")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + PTY.encode())
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes(PTY.encode("utf-16"))
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(PTY.encode() + b"# caf\xe9\n")
    huge = tmp_path / "huge.toml"
    huge.write_bytes(PTY.encode() + b"#" * (2 * 1024**2) + b"\n")
    return {
        "directory": (directory, None, "a directory, not a profile file"),
        "symlink-loop": (loop_a, None, "a symlink loop, not a profile file"),
        "dangling-symlink": (
            dangling,
            None,
            f"a dangling symlink (to {str(tmp_path / 'gone.toml')!r})",
        ),
        "fifo": (
            fifo,
            None,
            "not a regular file (a FIFO, socket or device); a profile is a TOML file",
        ),
        "utf8-bom": (
            bom,
            1,
            "starts with a UTF-8 byte-order mark (BOM): save it as UTF-8 without one",
        ),
        "utf16": (utf16, 1, "starts with a UTF-16 byte-order mark: save it as UTF-8 without one"),
        "latin1": (latin1, 3, "not UTF-8 text: byte 0xe9 at offset 32"),
        "too-large": (huge, None, "2.1MB is too large for a profile (at most 1MiB)"),
    }


SPECIAL = [
    "directory",
    "symlink-loop",
    "dangling-symlink",
    "fifo",
    "utf8-bom",
    "utf16",
    "latin1",
    "too-large",
]


@pytest.mark.parametrize("which", SPECIAL)
def test_a_profile_path_that_is_no_profile_says_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    path, line, message = _special_files(tmp_path)[which]
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == expected(path, line, None, message)


def test_a_run_named_after_an_unprintable_file_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No [run] name: the file's name is the run's, so it must pass the same check."""
    path = tmp_path / "run\x1b]0;owned\x07.toml"
    path.write_text(PTY, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "run.name: the run is named after its file, which must be printable text" in err
    assert "\x1b]" not in err  # the error quotes it escaped, as every other


def test_duration_override_has_the_profile_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PTY)
    code = main(["run", str(path), "--headless", "--duration", "0s", "--runs-dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err == "stressdeck: --duration: must be more than 0s, got 0s\n"


RUN_SAMPLE = [
    "duration-nan",
    "every-1us",
    "key-taken",
    "base-url-ftp",
    "count-absurd",
    "set-rate-zero",
]


@pytest.mark.parametrize("case", RUN_SAMPLE)
def test_stressdeck_run_refuses_before_creating_a_run_directory(tmp_path: Path, case: str) -> None:
    _, text, line, key, message = next(c for c in CASES if c[0] == case)
    path = write(tmp_path, text)
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "console", "run", str(path), "--headless", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert (proc.returncode, proc.stderr) == (2, expected(path, line, key, message))
    assert not runs.exists()


def test_stressdeck_validate_says_what_a_directory_is(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "console", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert (proc.returncode, proc.stderr) == (
        2,
        expected(tmp_path, None, None, "a directory, not a profile file"),
    )
