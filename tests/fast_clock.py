"""Engine tests on a fast-forwarding clock: a 60 s run in milliseconds, its times exact.

:func:`on_loop_time` runs an async test on its own looptime loop (the loop's clock jumps to
the next timer whenever every task waits) and hands the engine that loop's clock
(``Run(clock=loop.time)``, :func:`loop_clock`). Only in-process work belongs here: a test that
waits on a real subprocess or socket needs real time.

The looptime pytest plugin is switched off in ``pyproject.toml``: it makes an event loop for
every sync test and leaves it open. This helper is all the tests need of it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

import looptime

P = ParamSpec("P")


def on_loop_time(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run the async ``test`` to completion on a fresh fast-forwarding loop."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        loop = looptime.new_event_loop()  # time compaction on from the start
        try:
            loop.run_until_complete(test(*args, **kwargs))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # pytest-asyncio must see a plain test, and pytest the test's own fixtures
    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    del run.__wrapped__
    return run


def loop_clock() -> Callable[[], float]:
    """The running loop's clock, for ``Run(clock=...)``."""
    return asyncio.get_running_loop().time
