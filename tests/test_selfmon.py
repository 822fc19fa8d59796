"""The console watching itself: the engine's CPU is its own thread's, apart from drawing."""

from __future__ import annotations

import threading
import time

from console.selfmon import SelfMonitor


def burn(cpu_seconds: float) -> None:
    """Use ``cpu_seconds`` of this thread's CPU, however long that takes on a busy machine."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass


def test_engine_cpu_counts_the_engines_thread_and_not_the_ui_threads() -> None:
    mon = SelfMonitor()
    mon.sample(0.0)  # primes the engine thread's clock
    ui = threading.Thread(target=burn, args=(0.2,))  # drawing, on another thread
    ui.start()
    ui.join()
    mon.sample(1.0)
    assert mon.engine_cpu_pct < mon.cpu_pct  # the process paid for the drawing, the engine did not
    assert mon.engine_cpu_pct < 5.0

    burn(0.3)  # the engine itself working
    mon.sample(2.0)
    assert mon.engine_cpu_pct > 1.0  # 0.3 s of CPU over at most 30 s of a loaded machine


def test_the_first_sample_only_primes() -> None:
    mon = SelfMonitor()
    burn(0.05)
    mon.sample(0.0)
    assert (
        mon.engine_cpu_pct == 0.0
    )  # nothing to compare with yet: not a reading from init's thread
