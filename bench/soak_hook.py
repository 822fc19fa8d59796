"""Runs ``stressdeck`` with a memory probe inside, for ``bench/soak_bench.py``.

``python bench/soak_hook.py run demo ...`` is the ``stressdeck`` command (``console.cli.main``)
plus one daemon thread that, at ``SOAK_HOOK_FROM`` and ``SOAK_HOOK_TO`` seconds after start,
counts the live objects by type (``gc``) and, when ``SOAK_HOOK_TRACEMALLOC`` is set, takes a
tracemalloc snapshot; at the second point it writes the top differences to ``SOAK_HOOK_OUT``
as JSON. Nothing of this is in the product: a soak benchmark asks what grew, the console
itself does not need to know.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def _probe(out: Path, start: float, at_from: float, at_to: float, traced: bool) -> None:
    time.sleep(max(0.0, start + at_from - time.monotonic()))
    counts0 = _type_counts()
    snap0 = tracemalloc.take_snapshot() if traced else None
    time.sleep(max(0.0, start + at_to - time.monotonic()))
    counts1 = _type_counts()
    diffs = sorted(((n - counts0.get(name, 0), name) for name, n in counts1.items()), reverse=True)
    grown = [
        {"type": name, "before": counts0.get(name, 0), "after": counts1[name], "diff": diff}
        for diff, name in diffs
        if diff > 0
    ]
    result: dict[str, Any] = {
        "window_s": [at_from, at_to],
        "objects_before": sum(counts0.values()),
        "objects_after": sum(counts1.values()),
        "types_grown": grown[:15],
    }
    if snap0 is not None:
        snap1 = tracemalloc.take_snapshot()
        stats = snap1.compare_to(snap0, "traceback")
        result["tracemalloc_top"] = [
            {
                "size_diff_kb": round(s.size_diff / 1024, 1),
                "count_diff": s.count_diff,
                "where": [f"{f.filename}:{f.lineno}" for f in s.traceback][-6:],
            }
            for s in stats[:12]
        ]
    out.write_text(json.dumps(result, indent=1) + "\n")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    traced = bool(os.environ.get("SOAK_HOOK_TRACEMALLOC"))
    if traced:
        tracemalloc.start(12)
    out = os.environ.get("SOAK_HOOK_OUT")
    if out:
        thread = threading.Thread(
            target=_probe,
            args=(
                Path(out),
                time.monotonic(),
                float(os.environ.get("SOAK_HOOK_FROM", "60")),
                float(os.environ.get("SOAK_HOOK_TO", "170")),
                traced,
            ),
            name="soak-probe",
            daemon=True,
        )
        thread.start()
    from console.cli import main as cli_main

    return int(cli_main(sys.argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
