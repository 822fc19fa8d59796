"""``stressdeck diff``: a real regression is found, the noise between two equal runs is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.diff import FigureChange, _judge
from console.engine import Run
from console.profile import load_profile_text

PROFILE = """
[run]
name = "diff"
duration = "10s"
[[http]]
name = "api"
executor = "constant-arrival-rate"
rate = 30
pre_allocated_vus = 10
max_vus = 40
  [[http.steps]]
  request = {{ url = "/api/v1/schemas/main/object-types" }}
[[faults]]
at = "0s"
action = "http.latency"
target = "api"
params = {{ delay = "{delay}" }}
"""


async def run_with(delay: str, runs_dir: Path) -> Path:
    result = await Run(
        load_profile_text(PROFILE.format(delay=delay), name="t"), runs_dir=runs_dir
    ).run()
    return result.run_dir


@pytest.mark.slow
async def test_a_30_percent_p95_regression_is_found_and_equal_runs_are_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 200 ms of the target's own latency: loopback jitter on a loaded machine is a few ms,
    # small next to it, and +60 ms is a 30% slower p95.
    first = await run_with("200ms", tmp_path)
    again = await run_with("200ms", tmp_path)
    slower = await run_with("260ms", tmp_path)
    assert main(["diff", str(first), str(again)]) == 0, capsys.readouterr().out
    assert "no regression" in capsys.readouterr().out
    assert main(["diff", str(first), str(slower), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    p95 = next(
        f for f in data["figures"] if f["metric"] == "http_req_duration" and f["figure"] == "p(95)"
    )
    assert p95["verdict"] == "regression" and 0.2 < p95["change"] < 0.4, p95
    assert main(["diff", str(first), str(slower), "--max-regression", "50%"]) == 0
    assert "| http.latency | api |" in capsys.readouterr().out  # matched fault by fault


def test_a_change_inside_the_noise_is_noise() -> None:
    def judge(a: float, b: float, noise: float) -> FigureChange:
        return _judge("m", "p(95)", "ms", a, b, noise, True, 0.1)

    assert judge(100.0, 130.0, 5.0).verdict == "regression"
    assert judge(100.0, 130.0, 40.0).verdict == "noise"  # the runs swing by more than that
    assert judge(100.0, 70.0, 5.0).verdict == "improvement"
    assert judge(100.0, 105.0, 1.0).verdict == "noise"  # beyond the noise, within 10%


def test_a_directory_without_a_snapshot_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(tmp_path), str(tmp_path)]) == 2
    assert "no snapshot-N.json" in capsys.readouterr().err


def test_a_max_regression_that_is_no_share_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nan`` made every comparison false (no regression, ever: a CI gate that always
    passed) and printed NaN into --json; a negative share made every change a regression."""
    for bad in ("nan", "nan%", "inf", "-5%"):
        assert main(["diff", str(tmp_path), str(tmp_path), f"--max-regression={bad}"]) == 2, bad
        assert "--max-regression" in capsys.readouterr().err, bad


def test_the_markdown_escapes_what_came_from_the_runs() -> None:
    """A fault's target (a session id, a link the API named) is text from the run: a `|`
    would split its row and `<img>` would render in a PR comment."""
    from console.diff import FaultChange, RunDiff, to_markdown

    change = FaultChange("net.down", "a|b<img src=x>", 1.0, 1.0, 2.0, 2.0, "back", "back", "noise")
    text = to_markdown(RunDiff("A", "B", 0.1, (), (change,)))
    (row,) = [line for line in text.splitlines() if line.startswith("| net.down")]
    assert "a\\|b&lt;img src=x&gt;" in row and row.count(" | ") == 5, row
