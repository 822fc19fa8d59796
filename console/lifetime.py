"""Every process Stressdeck starts dies with it, even when Stressdeck is SIGKILLed.

Why the kernel's parent-death signal: a SIGKILLed console runs no cleanup, and the hangup of
a PTY's closed master only reaches programs that do not ignore SIGHUP. ``PR_SET_PDEATHSIG``
makes the kernel send SIGKILL to the child the moment its parent goes, whatever the child
does with its signals.

Two caveats shape how it is used:

* The "parent" is the *thread* that forked, not the process. Every child is therefore started
  from the engine's event-loop thread, which lives as long as the run: the main thread
  headless, the ``stressdeck-engine`` thread in the console (:mod:`console.controller`), never
  a pool thread (``asyncio.to_thread``) that could retire while the child still runs.
* The parent can die between ``fork`` and the ``prctl``; the child then checks its parent pid
  and exits at once rather than live on as an orphan.

It is set between fork and exec (``preexec_fn``): one ``prctl`` and one ``getppid``, no Python
objects allocated, so it is safe in a child forked from a threaded process.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1
try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: no parent-death signal; process groups remain
    _prctl = None


def die_with_parent(then: Callable[[], None] | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` that ties the child's life to this process (then runs ``then``)."""
    parent = os.getpid()
    prctl = _prctl

    def preexec() -> None:  # runs in the child between fork and exec
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the prctl took effect
                os._exit(1)
        if then is not None:
            then()

    return preexec
