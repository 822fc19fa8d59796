"""The cluster settings without a cluster: profile checks, the CLI option, a missing extra.

These run everywhere (no Ray needed); tests/test_cluster.py runs the real thing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main
from console.cluster import parse_cluster
from console.errors import ClusterError
from console.profile import ProfileError, load_profile_text

ROOT = Path(__file__).resolve().parent.parent

BASE = """
[run]
{run}
[[http]]
name = "api"
base_url = "embedded"
executor = "constant-vus"
vus = 1
  [[http.steps]]
  request = {{ url = "/health" }}
"""


def test_cluster_addresses() -> None:
    assert parse_cluster("local:2").local_nodes == 2
    assert parse_cluster("10.0.0.5:6379").address == "10.0.0.5:6379"
    assert parse_cluster("auto").address == "auto"
    for bad in ("local:0", "local:99", "", "a b"):
        with pytest.raises(ClusterError):
            parse_cluster(bad)


def test_profile_checks_the_cluster_settings() -> None:
    profile = load_profile_text(BASE.format(run='cluster = "local:2"\non_node_lost = "degraded"'))
    assert profile.run.cluster == "local:2" and profile.run.on_node_lost == "degraded"
    with pytest.raises(ProfileError) as caught:
        load_profile_text(BASE.format(run='cluster = "local:0"\non_node_lost = "panic"'))
    text = str(caught.value)
    assert "run.cluster" in text and "between 1 and 8" in text
    assert "run.on_node_lost" in text and "respread, degraded" in text


def test_a_recovery_criterion_can_follow_node_loss() -> None:
    criterion = '\n[[criteria]]\nafter = "node.lost"\nwithin = "10s"\nthreshold = "rate>=90%"\n'
    profile = load_profile_text(BASE.format(run="") + criterion)
    assert [c.after for c in profile.criteria] == ["node.lost"]


def test_bad_cluster_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "demo", "--headless", "--cluster", "local:0"]) == 2
    assert "--cluster: local:0: between 1 and 8" in capsys.readouterr().err


def test_without_the_extra_a_cluster_run_says_what_to_install() -> None:
    # Ray hidden as if not installed: the message names the extra, nothing else starts.
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from console.cluster import open_cluster\n"
        "from console.errors import ClusterError\n"
        "try:\n"
        "    open_cluster('local:1')\n"
        "except ClusterError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "pip install 'stressdeck[cluster]'" in proc.stdout, proc.stderr
