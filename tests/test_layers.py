"""The layers hold: the engine side never loads Textual, and the import contract covers it all.

``lint-imports`` checks the contract in ``pyproject.toml`` statically; these tests make sure the
contract cannot be left behind by a new module, and prove the same thing at run time by
importing every engine module (each kind, the targets, the HTTP worker) in a fresh interpreter.
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import console

ROOT = Path(__file__).resolve().parents[1]
# The UI side and the entry points that may load it.
UI_SIDE = {"console.ui", "console.cli", "console.__main__"}


def _contracts() -> list[dict[str, object]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = data["tool"]["importlinter"]["contracts"]
    return contracts


def _engine_sources() -> list[str]:
    engine = _contracts()[0]
    sources = engine["source_modules"]
    assert isinstance(sources, list)
    return [str(s) for s in sources]


def _top_level_modules() -> list[str]:
    return sorted(f"console.{m.name}" for m in pkgutil.iter_modules(console.__path__))


def _all_engine_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(console.__path__, "console."):
        if not any(info.name == s or info.name.startswith(s + ".") for s in UI_SIDE):
            names.append(info.name)
    return sorted(names)


def test_every_console_module_is_on_one_side_of_the_contract() -> None:
    sources = set(_engine_sources())
    for name in _top_level_modules():
        assert (name in sources) != (name in UI_SIDE), (
            f"{name} must be listed in the engine contract's source_modules or be UI"
        )


def test_no_engine_module_loads_textual_widgets_or_ray() -> None:
    """Nor Ray: the cluster extra is optional, so only a cluster run may import it."""
    modules = _all_engine_modules()
    # the kinds, the targets and the worker are among them, not a chosen few
    for needed in (
        "console.sessions.pty",
        "console.sessions.ssh",
        "console.sessions.http",
        "console.sessions.http.worker",
        "console.targets.http_server",
        "console.targets.ssh_server",
        "console.cluster",
        "console.cluster.backend",
        "console.cluster.actors",
        "console.sessions.http.remote",
    ):
        assert needed in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'widgets', 'ray')"
        " or m.startswith('console.ui'))\n"
        f"print('loaded', {len(modules)}, 'bad', bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("bad []"), proc.stdout


def test_the_console_loads_a_kinds_libraries_only_when_a_profile_has_that_kind() -> None:
    """A PTY-only console never pays for aiohttp, httpx or asyncssh (~14 MB of RSS once, when
    the command line imported the HTTP kind's rate limit at the top)."""
    code = (
        "import sys\n"
        "import console.ui.app, console.cli, widgets\n"
        "from console.profile import load_profile\n"
        "load_profile('bench/tui40.toml')\n"
        "print(sorted(m for m in ('aiohttp', 'httpx', 'asyncssh', 'ray') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_contracts_are_kept() -> None:
    proc = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
