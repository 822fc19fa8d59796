"""A monitor of the target host: disk I/O, network, load and top processes, read through the
embedded SSH server from this machine's real /proc, and the bottleneck named in the report."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from console.bottleneck import find_bottleneck, markdown_lines
from console.engine import Run
from console.profile import load_profile_text
from console.sessions.ssh.parse import (
    RateMeter,
    parse_diskstats,
    parse_loadavg,
    parse_net_dev,
    parse_top,
)


def test_the_parsers_read_this_machine_and_refuse_each_other() -> None:
    diskstats = Path("/proc/diskstats").read_text()
    netdev = Path("/proc/net/dev").read_text()
    loadavg = Path("/proc/loadavg").read_text()
    ps = subprocess.run(
        ["ps", "-eo", "pid,comm,%cpu,rss", "--sort=-%cpu"], capture_output=True, text=True
    ).stdout
    assert parse_diskstats(diskstats) is not None
    assert parse_net_dev(netdev) is not None
    assert parse_loadavg(loadavg) is not None
    top = parse_top(ps)
    assert top and all(rss >= 0 for _, _, rss in top)
    for text in (diskstats, netdev, loadavg, ps):
        parsed = [
            p(text) is not None for p in (parse_diskstats, parse_net_dev, parse_loadavg, parse_top)
        ]
        assert sum(parsed) == 1, text[:80]


def test_the_parsers_refuse_what_a_host_under_test_should_not_say() -> None:
    # The host is the system under test: its output is outside text. A field that is not a
    # number must not raise (the poll loop would die silently), and a %CPU of nan or inf
    # must not reach events.jsonl or the snapshot as NaN/Infinity (not JSON).
    header = "Inter-|   Receive\n face |bytes packets\n"
    assert parse_net_dev(header + "  eth0: abc 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n") is None
    ps = "PID COMMAND %CPU RSS\n1 ok 1.5 10\n2 bad nan 10\n3 worse inf 10\n4 big 2 1e400\n"
    assert parse_top(ps) == [("ok", 1.5, 10240.0)]


def test_a_rate_meter_gives_per_second_rates_and_skips_a_wrap() -> None:
    meter = RateMeter()
    assert meter.update(0.0, (100, 10)) is None
    assert meter.update(2.0, (300, 30)) == (100.0, 10.0)
    assert meter.update(3.0, (0, 0)) is None  # the host rebooted


MONITOR = """
[run]
name = "monitor"
duration = "7s"
[[ssh]]
name = "host"
target = "embedded"
monitor = true
poll_interval = "1s"
intensity = "off"
[[criteria]]
metric = "remote_cpu"
threshold = "max<=100%"
"""


@pytest.mark.slow
async def test_a_monitor_reports_the_host_s_resources(tmp_path: Path) -> None:
    result = await Run(load_profile_text(MONITOR, name="m"), runs_dir=tmp_path).run()
    snap = result.snapshot
    assert result.exit_code == 0, [(c.name, c.state, c.evidence) for c in snap.criteria]
    assert snap.criteria[0].metric == "ssh_remote_cpu"
    for name in ("ssh_remote_load", "ssh_remote_disk_busy", "ssh_remote_net_rx", "ssh_remote_cpu"):
        metric = snap.metric(name)
        assert metric is not None and metric.get("value") is not None, name
    pane = snap.session("host#0")
    assert pane is not None
    details = dict(pane.details)
    assert details.get("load", "-") != "-" and "%" in details.get("top", ""), pane.last_event


def _history(cpu: list[float | None]) -> dict[str, object]:
    p95 = [10.0, 11.0, 10.0, 9.0, 10.0, 40.0, 45.0, 50.0]
    return {
        "t": [float(i) for i in range(8)],
        "columns": {
            "run|http_req_duration|p95": p95,
            "run|ssh_remote_cpu|value": cpu,
            "run|ssh_remote_mem|value": [50.0] * 8,
            "run|ssh_remote_load|value": [1.0, 1.0, 1.5, 2.0, 3.0, 4.0, 4.0, 4.0],
        },
    }


def test_the_report_names_the_resource_that_saturated_first() -> None:
    found = find_bottleneck(_history([20.0, 30.0, 50.0, 95.0, 99.0, 99.0, 99.0, 99.0]))
    assert found is not None and found["rose_at"] == 5.0
    assert found["first"]["resource"] == "CPU" and found["first"]["t"] == 3.0
    assert "**CPU** saturated first" in "\n".join(markdown_lines(_history([95.0] * 8)))
    quiet = markdown_lines(_history([20.0] * 8))
    assert "No resource of the target host saturated" in quiet[1]
