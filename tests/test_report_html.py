"""report.html and the run timeline behind it.

The browser test loads a report written by a real run (the CLI, a real PTY group printing
``stressdeck emit`` lines beside the in-process test kind, scheduled faults, a criterion that
flips) in Debian's headless Chromium, and reads back what the page recorded about itself: charts
created, coloured pixels inside each plot area (so "drew" means pixels, not DOM nodes), and any
error or ``console.error``. It also saves a screenshot (``STRESSDECK_SCREENSHOTS=dir`` keeps a
copy to look at).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from console import report_html
from console.engine import Run
from console.metrics import MetricSpec, MetricsRegistry, MetricType
from console.profile import load_profile, load_profile_text
from console.timeline import RunRecorder, Timeline, column
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags that work on a closed network as root (see the README's system packages).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
    "--window-size=1400,4200",
]


# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def test_timeline_memory_is_bounded_and_merges_by_averaging() -> None:
    timeline = Timeline(capacity=8)
    for i in range(1000):
        timeline.record(float(i), {"a": 1.0, "ramp": float(i), "late": 7.0 if i >= 500 else None})
    assert len(timeline) <= 8
    assert timeline.stride == 128  # 1000 samples into at most 8 points: 128 per point
    data = timeline.export()
    assert data["t"][0] == 0.0 and all(v == 1.0 for v in data["columns"]["a"])
    # The first point covers samples 0..127: its mean is 63.5.
    assert data["columns"]["ramp"][0] == pytest.approx(63.5)
    # A column that appears late is padded with None before it, exactly as long as the others.
    late = data["columns"]["late"]
    assert len(late) == len(data["t"]) and late[0] is None and late[-1] == 7.0
    # Kept as NaN in a double array (a quarter of a list of floats); never exported as NaN.
    assert all(v is None or v == v for values in data["columns"].values() for v in values)


def test_recorder_records_interval_figures_for_run_and_groups() -> None:
    clock = [0.0]
    specs = [
        MetricSpec("reqs", MetricType.COUNTER, "count"),
        MetricSpec("lat", MetricType.TREND, "ms"),
        MetricSpec("failed", MetricType.RATE),
        MetricSpec("mem", MetricType.GAUGE, "bytes", combine="sum"),
    ]
    registry = MetricsRegistry(specs, lambda: clock[0])
    sessions = [("a#0", "a", "fake", "running"), ("b#0", "b", "fake", "reconnecting")]
    recorder = RunRecorder(registry, lambda: sessions)
    recorder.sample(0.0)
    for _ in range(10):
        registry.add("reqs", 1, session="a#0")
        registry.observe("lat", 100.0, session="a#0")
        registry.rate("failed", False, session="a#0")
    registry.observe("lat", 5000.0, session="b#0")  # only in b's interval
    registry.rate("failed", True, session="b#0")
    registry.gauge("mem", 10.0, session="a#0")
    registry.gauge("mem", 5.0, session="b#0")
    recorder.sample(2.0)
    for _ in range(4):
        registry.observe("lat", 10.0, session="a#0")
    recorder.sample(3.0)
    cols = recorder.timeline.export()["columns"]
    assert cols[column("run", "reqs", "rate")] == [None, 5.0, 0.0]  # 10 in 2 s, then none
    assert cols[column("a", "reqs", "rate")] == [None, 5.0, 0.0]
    assert cols[column("run", "failed", "rate")][1] == pytest.approx(1 / 11, rel=1e-3)
    # k6's p95 of ten 100s and one 5000: rank 9.5, halfway from 100 to 5000. The next
    # interval only sees its own samples (10 ms), not the 5 s one.
    assert cols[column("run", "lat", "p95")][1] == pytest.approx(2550, rel=0.01)
    assert cols[column("run", "lat", "p95")][2] == pytest.approx(10, rel=0.01)
    assert cols[column("a", "lat", "p99")][1] == pytest.approx(100, rel=0.01)
    assert cols[column("a", "mem", "value")][1] == 10.0
    assert cols[column("run", "mem", "value")][1] == 15.0  # combine = sum
    assert cols[column("run", "fake_sessions_up", "share")] == [0.5, 0.5, 0.5]
    hist = recorder.histograms()
    assert sum(hist["run"]["lat"]["counts"]) == 15 and sum(hist["b"]["lat"]["counts"]) == 1


@pytest.mark.usefixtures("fake_kind")
async def test_fault_spans_end_by_duration_by_the_action_that_ends_them_or_by_recovery(
    tmp_path: Path,
) -> None:
    p = load_profile_text(
        '[run]\nname = "spans"\nduration = "2s"\n[[fake]]\nname = "a"\ncount = 2\n',
        path="t.toml",
    )
    run = Run(p, runs_dir=tmp_path)
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.2)
    slow = await run.inject("fake.slow", target="a#0", source="key")
    drop = await run.inject("fake.drop", target="a#1", params={"down": 0.3}, source="api")
    await asyncio.sleep(0.3)
    # fake.fast ends the slow fault: recorded as its end, not as a fault of its own
    ended = await run.inject("fake.fast", target="a", source="key")
    crash = await run.inject("fake.crash", target="a#1", source="key")
    await asyncio.sleep(0.2)  # so an open band (ending "now") could not pass for a closed one
    spans = {s["id"]: s for s in run.fault_spans()}
    assert ended.id == slow.id and ended.ended is not None
    assert spans[slow.id]["end"] == ended.ended  # a condition lasts until the action ending it
    assert spans[drop.id]["end"] == pytest.approx(drop.t + 0.3)  # its own duration
    assert spans[crash.id]["end"] is None  # a one-off: no band, a line
    assert len(spans) == 3  # the end is not a fault of its own
    history = run.history()
    assert [s["id"] for s in history["fault_spans"]] == list(spans) and history["columns"]
    run.request_stop()
    await task


def test_report_of_a_30_minute_pty_stability_run_stays_small() -> None:
    """31 sessions in two groups, every metric of the profile, 1,800 one-second samples and a
    fault every minute: the page must stay under a few MB however long the run."""
    profile = load_profile("pty-stability")
    clock = [0.0]
    registry = MetricsRegistry(profile.metric_specs().values(), lambda: clock[0])
    sessions = [(f"long#{i}", "long", "pty", "running") for i in range(30)]
    sessions.append(("burst#0", "burst", "pty", "running"))
    recorder = RunRecorder(registry, lambda: sessions)
    for second in range(1800):
        clock[0] = float(second)
        for sid, *_ in sessions[::3]:
            registry.add("pty_bytes", 4000.0 + second % 7, session=sid)
            registry.add("pty_lines", 20.0, session=sid)
            registry.gauge("pty_rss", 5e6 + second, session=sid)
            registry.gauge("pty_cpu", 1.5, session=sid)
            registry.rate("pty_output_loss", False, session=sid, count=20)
        if second % 60 == 30:
            registry.observe("pty_crash_detect_time", 4.0 + second % 11, session="long#3")
            registry.observe("pty_recovery_time", 300.0 + second % 97, session="long#3")
        for spec in registry.specs.values():  # every metric has a column in both groups
            for sid in ("long#0", "burst#0"):
                if spec.type is MetricType.COUNTER:
                    registry.add(spec.name, 1.0, session=sid)
                elif spec.type is MetricType.GAUGE:
                    registry.gauge(spec.name, float(second % 13), session=sid)
                elif spec.type is MetricType.RATE:
                    registry.rate(spec.name, second % 5 == 0, session=sid)
                else:
                    registry.observe(spec.name, float(second % 17) + 1, session=sid)
        registry.gauge("console_cpu", 3.0, session="run")
        registry.gauge("console_rss", 7e7, session="run")
        recorder.sample(float(second))
    history = recorder.export()
    history["fault_spans"] = [
        {"id": i, "start": 60.0 * i, "end": 60.0 * i + 2, "action": "pty.kill"}
        | {"source": "schedule", "target": "long", "sessions": 1}
        for i in range(1, 30)
    ]
    data = {
        "profile_name": "pty-stability",
        "state": "finished",
        "elapsed": 1800.0,
        "duration": 1800.0,
        "sessions": [
            {"id": s, "group": g, "kind": k, "state": st, "target": "emit", "counters": []}
            for s, g, k, st in sessions
        ],
        "criteria": [],
        "faults": [],
        "metrics": [],
        "recent_events": [],
        "profile": {"path": str(profile.path), "content": dict(profile.data)},
    }
    page = report_html.render(data, history)
    assert len(recorder.timeline) <= recorder.timeline.capacity
    assert len(page.encode()) < 3_000_000, len(page.encode())


def _run_demo_like(tmp_path: Path) -> Path:
    """A real run through the CLI: PTY emitters, the test kind, faults, a flipping criterion."""
    profile = tmp_path / "demo-like.toml"
    profile.write_text(
        """
[run]
name = "demo-like"
duration = "7s"
sample_interval = "250ms"

[[pty]]
name = "emit"
count = 2
command = ["stressdeck", "emit", "--count", "0", "--rate", "40", "--size", "60"]
restart = "on-crash"

[[fake]]
name = "ticker"
count = 2
interval = "20ms"
fail_every = 9
secret_token = "hunter2"

[[faults]]
at = "2s"
action = "pty.kill"
target = "emit"
pick = 1

[[faults]]
at = "3s"
action = "fake.drop"
target = "ticker"
params = { down = 1.0 }

[[faults]]
at = "4s"
action = "fake.slow"
target = "ticker"
params = { latency = 900.0 }

[[criteria]]
name = "ticker latency"
metric = "fake_latency"
threshold = "p(95)<500"
window = "1s"

[[criteria]]
name = "no output lost"
metric = "pty_output_loss"
threshold = "rate<1%"
"""
    )
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.engine_run",
            "run",
            str(profile),
            "--headless",
            "--runs-dir",
            str(runs),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run_dir,) = runs.iterdir()
    return run_dir


DRIVE = """
window.addEventListener("load", function () {
  var charts, u, over, r, y;
  function fire(type, x, target) {
    (target || over).dispatchEvent(new MouseEvent(type, { clientX: r.left + x, clientY: y,
      movementX: 5, bubbles: true, cancelable: true, view: window, button: 0, buttons: 1 }));
  }
  // One step per timer tick: uPlot handles the cursor on animation frames.
  var steps = [
    function () {
      charts = window.__sdCharts.timeline; u = charts[0]; over = u.over;
      r = over.getBoundingClientRect(); y = r.top + r.height / 2;
      fire("mouseenter", r.width * 0.2); fire("mousemove", r.width * 0.2);
    },
    function () { fire("mousedown", r.width * 0.2); },
    function () { fire("mousemove", r.width * 0.5); },
    function () { fire("mousemove", r.width * 0.8); },
    function () { fire("mouseup", r.width * 0.8, document); },
    function () {
      document.body.dataset.zooms = JSON.stringify(charts.map(function (c) {
        return [c.scales.x.min, c.scales.x.max];
      }));
      u.setScale("x", { min: u.data[0][0], max: u.data[0][u.data[0].length - 1] });
    },
    function () { fire("mousemove", u.valToPos(3.5, "x")); },  // inside fake.drop (3 s to 4 s)
    function () {
      document.body.dataset.hover = document.getElementById("fault-hover").textContent;
    },
  ];
  steps.forEach(function (step, i) { setTimeout(step, 300 + 100 * i); });
});
"""


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile_dir = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-*')))}"
    profile_dir.mkdir()
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (see .ci/run)")
def test_report_from_a_real_run_draws_in_chromium(tmp_path: Path) -> None:
    run_dir = _run_demo_like(tmp_path)
    page = run_dir / "report.html"
    html = page.read_text()
    assert "hunter2" not in html and "***redacted***" in html
    assert "cdn" not in html.lower() and "https://" not in html.replace(
        "https://github.com/leeoniya/uPlot", ""
    )
    snapshot = json.loads(max(run_dir.glob("snapshot-*.json")).read_text())
    assert [f["action"] for f in snapshot["faults"]][:3] == ["pty.kill", "fake.drop", "fake.slow"]

    dom = _chromium(page, tmp_path, "--dump-dom", "--enable-logging=stderr", "--v=0")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Chromium logs every console message and uncaught error as INFO:CONSOLE; the page is silent.
    assert console_messages(dom.stderr) == []
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body is not None, dom.stdout[:2000]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("ready") == "1", attrs
    assert attrs["errors"] == "", attrs["errors"]
    assert attrs["inkless"] == "", f"charts that drew nothing: {attrs['inkless']}"
    # Throughput, latency, error rate, sessions up, PTY output, console CPU/RSS.
    assert int(attrs["timeline-charts"]) == 6, attrs
    assert int(attrs["charts"]) > 6 + 2  # and the groups' small multiples and histograms

    # Zoom and hover, driven with real mouse events: drag across the first timeline chart, then
    # hover where a fault band is; every timeline chart must follow the zoom.
    driven = tmp_path / "driven.html"
    driven.write_text(html.replace("</body>", f"<script>{DRIVE}</script></body>"))
    dom = _chromium(driven, tmp_path, "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body is not None
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    zooms = json.loads(attrs["zooms"].replace("&quot;", '"'))
    assert len(zooms) == 6 and all(z == zooms[0] for z in zooms), zooms
    low, high = zooms[0]
    # The drag covered the middle 60% of the plot: the scale shrank to about that.
    assert 0.5 < (high - low) / snapshot["elapsed"] < 0.7, zooms
    assert "fake.drop from schedule on ticker" in attrs["hover"], attrs["hover"]

    shot = tmp_path / "report.png"
    result = _chromium(page, tmp_path, f"--screenshot={shot}")
    assert result.returncode == 0 and shot.stat().st_size > 50_000
    if keep := os.environ.get("STRESSDECK_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copy(page, Path(keep) / "report.html")
