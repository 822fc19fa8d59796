"""Seeded chaos: faults drawn at a Poisson rate from a weighted menu, the same for the same seed.

A ``[[chaos]]`` table names a ``rate`` (``"6/m"``: six faults a minute on average), a ``seed``
and a ``menu`` of actions with targets, parameters and weights. :func:`draws` turns that into
fault times and choices with its own :class:`random.Random`: exponential gaps between faults
(a Poisson process), then a weighted choice, then (for a ``pick``) which sessions, all from
the seed alone. So the same seed gives the same faults at the same run times, whatever else the
run does with its own random numbers; each one is recorded like any other fault with the source
``chaos``, and ``--replay`` of the run re-injects them exactly (then the chaos tables stay
quiet: the replay carries their faults).

Chaos can be switched off and on live (a key, :meth:`console.engine.Run.set_chaos`): while it is
off, draws come due and are skipped, so switching it back on resumes the same sequence.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChaosChoice", "ChaosDraw", "ChaosPlan", "draws"]


@dataclass(frozen=True)
class ChaosChoice:
    action: str
    target: str = "all"
    weight: float = 1.0
    pick: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChaosPlan:
    rate: float  # faults per second, on average
    seed: int
    start: float
    stop: float | None
    menu: tuple[ChaosChoice, ...]


@dataclass(frozen=True)
class ChaosDraw:
    t: float  # run seconds (un-paused)
    choice: ChaosChoice
    pick_seed: int  # chooses the sessions of a ``pick`` among those the target resolves to


def draws(plan: ChaosPlan, duration: float) -> Iterator[ChaosDraw]:
    """Every fault the plan makes before ``duration`` (or its ``stop``), in order."""
    rng = random.Random(plan.seed)
    end = min(duration, plan.stop) if plan.stop is not None else duration
    weights = [max(c.weight, 0.0) for c in plan.menu]
    if plan.rate <= 0 or not plan.menu or not any(weights):
        return
    t = plan.start
    while True:
        t += rng.expovariate(plan.rate)
        if t >= end:
            return
        choice = rng.choices(plan.menu, weights)[0]
        yield ChaosDraw(round(t, 3), choice, rng.getrandbits(32))


def picked(ids: Sequence[str], pick: int | None, pick_seed: int) -> list[str]:
    """The sessions a draw reaches: ``pick`` of ``ids`` chosen by the draw's own seed."""
    ordered = sorted(ids)
    if pick is None or pick >= len(ordered):
        return ordered
    return random.Random(pick_seed).sample(ordered, pick)
