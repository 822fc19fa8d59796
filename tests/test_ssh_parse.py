"""Unit tests of the SSH kind's pure parts: poll parsers, targets, config, the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import read_table
from console.sessions.ssh import KIND, figures
from console.sessions.ssh.channel import strip_escapes
from console.sessions.ssh.config import Endpoint, SshGroupConfig, expand_targets, parse_target
from console.sessions.ssh.parse import (
    CpuMeter,
    parse_df_percent,
    parse_meminfo_percent,
    parse_proc_stat,
)
from console.snapshot import MetricSummary

STAT_1 = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\nintr 1\n"
STAT_2 = "cpu  200 0 150 1000 150 0 0 0 0 0\ncpu0 1 1 1 1\n"
MEMINFO = "MemTotal:       1000000 kB\nMemFree:         100000 kB\nMemAvailable:    250000 kB\n"
DF_H = "Filesystem      Size  Used Avail Use% Mounted on\n/dev/vda        252G   22G   80G  22% /\n"
DF_WRAPPED = (
    "Filesystem            Size  Used Avail Use% Mounted on\n"
    "/dev/mapper/very-long-volume-group-name-root\n"
    "                       50G   40G   10G  80% /\n"
)


def test_cpu_percent_is_the_busy_share_of_the_delta() -> None:
    meter = CpuMeter()
    first = parse_proc_stat(STAT_1)
    assert first == (200, 1000)  # idle = idle + iowait = 800
    assert meter.update(first) is None  # one reading is not a rate
    second = parse_proc_stat(STAT_2)
    assert second is not None
    # busy 350-200 = 150 of total 1500-1000 = 500 jiffies
    assert meter.update(second) == pytest.approx(30.0)
    meter.reset()
    assert meter.update(second) is None


def test_cpu_parser_reads_real_proc_stat() -> None:
    text = Path("/proc/stat").read_text()
    busy, total = parse_proc_stat(text) or (0, 0)
    assert 0 < busy < total


def test_memory_and_disk_percent() -> None:
    assert parse_meminfo_percent(MEMINFO) == pytest.approx(75.0)
    old_kernel = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n"
    assert parse_meminfo_percent(old_kernel) == pytest.approx(50.0)
    assert parse_df_percent(DF_H) == 22.0
    assert parse_df_percent(DF_WRAPPED) == 80.0
    assert parse_meminfo_percent(DF_H) is None
    assert parse_df_percent(MEMINFO) is None
    assert parse_proc_stat(MEMINFO) is None


def test_targets_parse_and_repeat_to_fill_the_count() -> None:
    assert parse_target("vm1.example.com:2222") == Endpoint("vm1.example.com", 2222)
    assert parse_target("myalias") == Endpoint("myalias", None)
    assert parse_target("[::1]:22") == Endpoint("::1", 22)
    assert parse_target("::1") == Endpoint("::1", None)
    assert str(Endpoint("::1", 22)) == "[::1]:22"
    with pytest.raises(ValueError):
        parse_target("host:notaport")
    filled = expand_targets(("a:1", "b:2", "c"), 10)
    assert [e.host for e in filled] == ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"]


def test_config_defaults_are_the_spikes_and_units_parse() -> None:
    cfg, issues = read_table(
        SshGroupConfig,
        {"name": "p", "count": 10, "poll_interval": "5s", "jitter": "25%", "backoff": "500ms"},
        ("ssh", 0),
    )
    assert not issues and cfg is not None
    assert cfg.poll_commands == ("cat /proc/stat", "cat /proc/meminfo", "df -h /")
    assert (cfg.reconnect_attempts, cfg.reconnect_timeout, cfg.intensity) == (3, 15.0, "medium")
    assert cfg.verify_host_key is True
    assert cfg.jitter == pytest.approx(0.25) and cfg.backoff == pytest.approx(0.5)
    assert cfg.target_list() == ("embedded",)
    _, issues = read_table(SshGroupConfig, {"passphrase": "x"}, ("ssh", 0))
    assert issues and "unknown key" in issues[0].message


def test_kind_declares_every_metric_and_fault() -> None:
    names = {m.name for m in KIND.metrics}
    for expected in (
        "ssh_connect_time",
        "ssh_reconnect_time",
        "ssh_reconnect_success",
        "ssh_reconnect_attempts",
        "ssh_abnormal_ends",
        "ssh_exec_latency",
        "ssh_poll_failures",
        "ssh_remote_cpu",
        "ssh_remote_mem",
        "ssh_remote_disk",
        "ssh_pty_bytes",
    ):
        assert expected in names
    assert set(KIND.faults) >= {"drop", "auth_fail", "server_restart", "reconnect"}
    assert KIND.faults["server_restart"].params == {"down": "duration"}


class _Snap:
    def __init__(self, metrics: list[MetricSummary]) -> None:
        self.metrics = metrics

    def metric(self, name: str) -> MetricSummary | None:
        return next((m for m in self.metrics if m.name == name), None)


def test_summary_has_the_spikes_figures() -> None:
    snap = _Snap(
        [
            MetricSummary("ssh_reconnect_success", "rate", "", {"rate": 0.9, "count": 10.0}),
            MetricSummary("ssh_reconnect_time", "trend", "ms", {"p(95)": 5578.2, "count": 9.0}),
        ]
    )
    shown = figures(snap)
    assert shown["abnormal_ends"] == 0
    assert shown["global_reconnect_rate_pct"] == 90.0
    assert shown["global_reconnect_p95_ms"] == 5578.2
    assert figures(_Snap([]))["global_reconnect_rate_pct"] is None


def test_escape_codes_are_stripped_from_output_tail() -> None:
    assert strip_escapes(b"\x1b[01;32mroot\x1b[0m:~# ls\r") == "root:~# ls"
    assert strip_escapes(b"\x1b]0;title\x07$ ") == "␛]0;title␇$ "  # shown, not obeyed


def test_spike2_profile_has_the_spikes_configuration_and_criteria() -> None:
    from console.profile import load_profile

    profile = load_profile(Path(__file__).resolve().parent.parent / "profiles/spike2-ssh-pool.toml")
    assert profile.run.duration == 30 * 60
    (group,) = profile.groups
    cfg = group.config
    assert isinstance(cfg, SshGroupConfig)
    assert (cfg.count, cfg.poll_interval, cfg.intensity) == (10, 5.0, "medium")
    assert (cfg.reconnect_attempts, cfg.reconnect_timeout) == (3, 15.0)
    assert cfg.target_list() == ("embedded",) and cfg.verify_host_key
    (fault,) = profile.faults
    assert fault.action == "ssh.drop" and fault.target == "all" and fault.times == (120.0,)
    metrics = {c.metric for c in profile.criteria}
    assert {"ssh_abnormal_ends", "ssh_reconnect_success", "ssh_reconnect_time"} <= metrics
    assert {"console_rss", "engine_cpu"} <= metrics
    assert any(c.scope == "recovery" and c.after == "ssh.drop" for c in profile.criteria)
