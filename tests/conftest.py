from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def fake_kind() -> Iterator[None]:
    """Register the in-process ``[[fake]]`` kind for engine unit tests."""
    from console.sessions import KIND_MODULES

    KIND_MODULES["fake"] = "tests.fake_kind"
    try:
        yield
    finally:
        KIND_MODULES.pop("fake", None)


# Property tests draw the same examples on every run: a failure is reproducible, never a flake
# that comes and goes with the random seed (a new bug still shows on the run that adds it).
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
else:
    _hypothesis_settings.register_profile("stressdeck", derandomize=True, database=None)
    _hypothesis_settings.load_profile("stressdeck")
