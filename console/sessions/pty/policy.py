"""When a PTY program ends, whether and when to start it again.

Kept apart from the session so the decision is a pure function of the history, testable without
processes. Three policies, as in process supervisors (systemd's ``Restart=``, Docker's
``--restart``): ``always`` (also after a clean exit), ``on-crash`` (after a signal or a non-zero
exit code) and ``never``.

Backoff doubles from ``backoff`` up to ``backoff_max`` while crashes keep coming, and resets once
a process has lived longer than ``backoff_max``. Crash-loop detection gives up when
``crash_loop_count`` *unsolicited* crashes fall within ``crash_loop_window``: a program that dies
at start forever would otherwise burn CPU and flood the event log. Crashes a fault caused
(``pty.kill``) do not count towards a crash loop: the operator asked for them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["Decision", "Next", "RestartPolicy"]

PolicyName = Literal["always", "on-crash", "never"]
# What follows an exit: start again, or stop because of a crash loop, the restart limit or the
# policy itself.
Next = Literal["restart", "crash_loop", "max_restarts", "policy"]


@dataclass(frozen=True)
class Decision:
    next: Next
    delay: float = 0.0  # before a restart
    reason: str = ""  # for people: "restart policy never", "max restarts (5) reached", ...

    @property
    def restart(self) -> bool:
        return self.next == "restart"

    @property
    def crash_loop(self) -> bool:
        return self.next == "crash_loop"


class RestartPolicy:
    def __init__(
        self,
        policy: PolicyName,
        *,
        max_restarts: int,
        backoff: float,
        backoff_max: float,
        crash_loop_count: int,
        crash_loop_window: float,
    ) -> None:
        self.policy = policy
        self.max_restarts = max_restarts
        self.backoff = backoff
        self.backoff_max = max(backoff_max, backoff)
        self.crash_loop_count = crash_loop_count
        self.crash_loop_window = crash_loop_window
        self.restarts = 0
        self._delay = backoff
        self._crashes: deque[float] = deque(maxlen=max(crash_loop_count, 1))

    def decide(self, *, now: float, crashed: bool, solicited: bool, lifetime: float) -> Decision:
        """The program ended at ``now`` after living ``lifetime`` seconds: restart it?"""
        if crashed and not solicited:
            self._crashes.append(now)
            if (
                self.crash_loop_count > 0
                and len(self._crashes) >= self.crash_loop_count
                and now - self._crashes[0] <= self.crash_loop_window
            ):
                return Decision(
                    "crash_loop",
                    reason=(
                        f"crash loop: {len(self._crashes)} crashes in {now - self._crashes[0]:.1f}s"
                    ),
                )
        if self.policy == "never" or (self.policy == "on-crash" and not crashed):
            return Decision("policy", reason=f"restart policy {self.policy}")
        if self.max_restarts and self.restarts >= self.max_restarts:
            return Decision("max_restarts", reason=f"max restarts ({self.max_restarts}) reached")
        if lifetime > self.backoff_max:
            self._delay = self.backoff
        delay = self._delay
        self._delay = min(self._delay * 2, self.backoff_max) if self._delay else 0.0
        self.restarts += 1
        return Decision("restart", delay=delay)
