"""The bundled demo, headless, cut to 20 s: a warning at start, not-judged criteria, exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.errors import ExitStatus

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_cut_to_20s_warns_and_ends_not_judged(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "console", "run", "demo", "--headless", "--duration", "20s"]
    proc = subprocess.run(
        [*command, "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == ExitStatus.NOT_JUDGED, out + proc.stderr
    warning = out.splitlines()[1]
    assert (
        warning.startswith("stressdeck: warning: pty.kill at 20s,") and "ssh.drop at 30s" in warning
    )
    assert ": finished: ○ NOT JUDGED" in out
    assert "✗" not in out.split("  criteria")[1].split("  summary")[0]  # nothing failed
    assert (
        "○ dropped SSH sessions back within 15 s .. not judged: "
        "ssh.drop is scheduled at 30s; the run ended at 20s" in out
    )
    (run_dir,) = tmp_path.iterdir()
    (snap_file,) = sorted(run_dir.glob("snapshot-*.json"))[-1:]
    states = {c["name"]: c["state"] for c in json.loads(snap_file.read_text())["criteria"]}
    assert states["killed sessions back within 5 s"] == "not_judged"
    assert "fail" not in states.values()
