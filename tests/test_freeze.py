"""``stressdeck freeze``: an exploration becomes a CI profile that passes on the same target
and fails on a clearly slower one."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from console.cli import main
from console.engine import Run
from console.freeze import freeze, toml_dump
from console.profile import load_profile, load_profile_text
from tests.fast_clock import loop_clock, on_loop_time

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXPLORATION = """
[run]
name = "explore"
duration = "10s"
[[http]]
name = "api"
executor = "constant-arrival-rate"
rate = 30
pre_allocated_vus = 10
max_vus = 60
  [[http.steps]]
  request = { url = "/api/v1/schemas/main/object-types", headers = { "X-Probe" = "a b" } }
[[faults]]
at = "4s"
action = "http.burst"
target = "api"
params = { count = 20 }
"""

SLOWER = """
[[faults]]
at = "0s"
action = "http.latency"
target = "api"
params = { delay = "300ms" }
"""


def test_toml_dump_reads_back_to_the_same_data() -> None:
    data = tomllib.loads(EXPLORATION)
    assert tomllib.loads(toml_dump(data)) == data


@pytest.mark.slow
async def test_a_frozen_run_passes_on_the_same_target_and_fails_300ms_slower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    explored = await Run(load_profile_text(EXPLORATION, name="x"), runs_dir=tmp_path).run()
    frozen = tmp_path / "frozen.toml"
    assert main(["freeze", str(explored.run_dir), "-o", str(frozen)]) == 0
    text = frozen.read_text()
    assert 'action = "http.burst"' in text and "# observed: p(95) = " in text
    profile = load_profile(frozen)
    assert [f.action for f in profile.faults] == ["http.burst"]
    assert {c.metric for c in profile.criteria} >= {"http_req_duration", "http_req_failed"}
    again = await Run(profile, runs_dir=tmp_path).run()
    assert again.exit_code == 0, [
        (c.name, c.value_text, c.target_text) for c in again.snapshot.criteria
    ]
    slower = tmp_path / "slower.toml"
    slower.write_text(text + SLOWER)
    worse = await Run(load_profile(slower), runs_dir=tmp_path).run()
    failed = {c.metric for c in worse.snapshot.criteria if c.state == "fail"}
    assert worse.exit_code == 1 and "http_req_duration" in failed


@pytest.mark.usefixtures("fake_kind")
@on_loop_time
async def test_recovery_after_each_kind_of_fault_is_frozen_with_a_margin(tmp_path: Path) -> None:
    text = (
        '[run]\nname = "drops"\nduration = "6s"\n[[fake]]\nname = "t"\ncount = 2\n'
        '[[faults]]\nat = ["1s", "3s"]\naction = "fake.drop"\ntarget = "t"\n'
        "params = { down = 1.5 }\n"
    )
    run = await Run(
        load_profile_text(text, path="d.toml"), runs_dir=tmp_path, clock=loop_clock()
    ).run()
    frozen = freeze(run.run_dir)
    assert frozen.count("[[faults]]") == 2 and 'at = "1s"' in frozen
    assert "# observed: slowest session back 1.5s after a fake.drop" in frozen
    assert 'within = "6.5s"' in frozen  # 1.5 s observed: twice that, at least 5 s more
    path = tmp_path / "frozen.toml"
    path.write_text(frozen)
    profile = load_profile(path)
    (recovery,) = [c for c in profile.criteria if c.scope == "recovery"]
    assert recovery.after == "fake.drop" and recovery.within == 6.5
    again = await Run(profile, runs_dir=tmp_path, clock=loop_clock()).run()
    assert again.exit_code == 0, [(c.name, c.value_text) for c in again.snapshot.criteria]


@pytest.mark.usefixtures("fake_kind")
@on_loop_time
async def test_the_frozen_profile_is_written_private_and_never_through_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It holds the run's profile: 0600 from the first byte whatever the umask, and a link
    planted at the output path is replaced, not followed to clobber what it points at."""
    text = '[run]\nname = "p"\nduration = "2s"\n[[fake]]\nname = "t"\n'
    run = await Run(
        load_profile_text(text, path="p.toml"), runs_dir=tmp_path, clock=loop_clock()
    ).run()
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    link = tmp_path / "frozen.toml"
    link.symlink_to(victim)
    old = os.umask(0o022)
    try:
        assert main(["freeze", str(run.run_dir), "-o", str(link)]) == 0
    finally:
        os.umask(old)
    assert victim.read_text() == "mine\n"
    assert not link.is_symlink() and "[[fake]]" in link.read_text()
    assert stat.S_IMODE(link.stat().st_mode) == 0o600
