"""The repository keeps its promises: CI runs the README's command, docs match the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^    (\S.*)$", text.split("\n## ", 1)[0], flags=re.MULTILINE)


def test_readme_opens_with_the_two_commands() -> None:
    start, test = readme_commands()[:2]
    assert start == "pip install . && stressdeck"
    assert test == "pip install '.[test,cluster]' && python3 -m pytest"


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == readme_commands()[1]


def test_profiles_readme_is_generated_from_the_code() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "console.profile_docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (ROOT / "profiles" / "README.md").read_text() == generated, (
        "profiles/README.md is stale: run `python -m console.profile_docs > profiles/README.md`"
    )
