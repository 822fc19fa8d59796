"""The ``[[ssh]]`` group configuration and how its targets become connection endpoints.

Defaults are SPIKE-2's: poll every 5 s with its three commands, medium PTY intensity, 3
reconnect attempts with a 15 s timeout each. Where the spike had no setting (keepalive, backoff,
host keys) the default is the safe choice: host keys are verified, and keepalive is on so a link
that dies silently is noticed within ``keepalive_interval * keepalive_count_max`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from console.config import GroupConfig, opt

__all__ = ["EMBEDDED", "Endpoint", "SshGroupConfig", "expand_targets", "parse_target"]

EMBEDDED = "embedded"
SPIKE_POLL_COMMANDS = ("cat /proc/stat", "cat /proc/meminfo", "df -h /")


@dataclass(frozen=True, kw_only=True)
class SshGroupConfig(GroupConfig):
    """One ``[[ssh]]`` group: ``count`` connections, each polling and driving a PTY."""

    target: str = opt(
        "",
        check=lambda t: _target_problem((t,) if t else ()),
        doc='One target: "embedded" (the built-in SSH server, started automatically), '
        '"host:port", "host" (port 22 or from ~/.ssh/config) or a ~/.ssh/config Host alias.',
    )
    targets: tuple[str, ...] = opt(
        (),
        check=lambda t: _target_problem(t),
        doc="Several targets; sessions take them in turn, repeating the list to fill `count` "
        "(as SPIKE-2 did). Host names are resolved through DNS. Default: the embedded server.",
    )
    via: str = opt(
        "",
        doc="Connect through this `[[links]]` link; the host-key check still refers to the "
        "real target. The link forwards to the target's host:port (port 22 when none is "
        "given); for a ~/.ssh/config alias give the link an `upstream`.",
    )
    user: str = opt("", doc="Login name; default the ~/.ssh/config User, else the local user.")
    auth: Literal["key", "agent", "both"] = opt(
        "both",
        doc='How to authenticate: "key" (key_file), "agent" (ssh-agent via SSH_AUTH_SOCK) or '
        '"both" (agent keys first, then the key file).',
    )
    key_file: str = opt(
        "",
        doc="Private key file; default ~/.ssh/id_* (or the embedded server's client key). "
        "Its contents never reach logs or snapshots.",
    )
    passphrase_env: str = opt(
        "",
        doc="Name of the environment variable holding the key's passphrase. Passphrases are "
        "never accepted in the profile or on the command line.",
    )
    known_hosts: str = opt(
        "",
        doc="known_hosts file to verify host keys with; default the files ssh_config names, else "
        "OpenSSH's (~/.ssh/known_hosts, known_hosts2, /etc/ssh/ssh_known_hosts, "
        "ssh_known_hosts2). `UserKnownHostsFile none` never turns checks off. "
        "The embedded server's key is pinned automatically.",
    )
    keep_target_keys: bool = opt(
        False,
        doc="Embedded server only: keep the keys it generates in the run directory's "
        "ssh-target/ (0600) after the run. By default they are deleted when the run ends, since "
        "the client key logs in as you.",
    )
    verify_host_key: bool = opt(
        True,
        doc="Verify host keys. false is for throwaway hosts only: the pane shows a "
        '"host key unchecked" badge. A changed host key always fails the session, never retries.',
    )
    ssh_config: str = opt(
        "", doc="OpenSSH client config to read Host aliases from; default ~/.ssh/config."
    )
    connect_timeout: float = opt(
        15.0,
        unit="duration",
        gt=0,
        le=3600.0,
        doc="Time allowed for the first connection (TCP, keys, auth).",
    )
    keepalive_interval: float = opt(
        2.0,
        unit="duration",
        le=3600.0,
        doc="Send an SSH keepalive after this much silence (0 turns keepalive off).",
    )
    keepalive_count_max: int = opt(
        3,
        ge=1,
        le=100,
        doc="Unanswered keepalives before the link counts as dead and the session reconnects.",
    )
    poll_interval: float = opt(
        5.0,
        unit="duration",
        ge=0.1,
        le=3600.0,
        doc="How often to run the poll commands (SPIKE-2: 5 s).",
    )
    poll_commands: tuple[str, ...] = opt(
        SPIKE_POLL_COMMANDS,
        doc="Commands run over exec channels at each poll; /proc/stat, /proc/meminfo and df "
        "output become the ssh_remote_cpu, ssh_remote_mem and ssh_remote_disk gauges.",
    )
    monitor: bool = opt(
        False,
        doc="Monitor the host: poll disk I/O (/proc/diskstats), network (/proc/net/dev), load "
        "average and the top processes too, as ssh_remote_* gauges (a monitor of the system "
        "under test while it is loaded).",
    )
    exec_timeout: float = opt(
        10.0,
        unit="duration",
        gt=0,
        le=3600.0,
        doc="A poll command taking longer than this is a poll failure.",
    )
    intensity: Literal["off", "low", "medium", "high"] = opt(
        "medium",
        doc="PTY traffic per cycle: low 5 echo lines, medium 20, high 200 lines from `yes` "
        '(SPIKE-2\'s levels); "off" opens no PTY.',
    )
    pty_interval: float = opt(
        1.0,
        unit="duration",
        le=3600.0,
        doc="Time between PTY cycles (SPIKE-2 ran them back to back).",
    )
    pty_timeout: float = opt(
        10.0,
        unit="duration",
        gt=0,
        le=3600.0,
        doc="A PTY cycle whose output has not ended by then is a pty_error.",
    )
    reconnect_attempts: int = opt(
        3,
        ge=0,
        le=1000,
        doc="Attempts after each drop (and for the first connection) before the session is "
        "failed (SPIKE-2: 3).",
    )
    reconnect_timeout: float = opt(
        15.0,
        unit="duration",
        gt=0,
        le=3600.0,
        doc="Time allowed for each reconnect attempt (SPIKE-2: 15 s).",
    )
    backoff: float = opt(
        1.0,
        unit="duration",
        le=3600.0,
        doc="Wait before the first reconnect attempt; doubles for each further attempt.",
    )
    backoff_max: float = opt(
        10.0, unit="duration", le=3600.0, doc="Upper bound of the backoff wait."
    )
    jitter: float = opt(
        0.5,
        unit="percent",
        le=1.0,
        doc="Each wait is stretched by a random 0..jitter share, so sessions dropped together "
        "do not reconnect in lockstep.",
    )

    def target_list(self) -> tuple[str, ...]:
        if self.targets:
            return self.targets
        return (self.target or EMBEDDED,)


@dataclass(frozen=True)
class Endpoint:
    """Where one session connects: ``port`` None means "from ~/.ssh/config, else 22"."""

    host: str
    port: int | None

    @property
    def embedded(self) -> bool:
        return self.host == EMBEDDED

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_target(text: str) -> Endpoint:
    """``host:port``, ``[v6]:port``, ``host``, a config alias or ``embedded``."""
    text = text.strip()
    if not text:
        raise ValueError("an empty SSH target")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad SSH target {text!r}: expected [address]:port")
        return Endpoint(host, _port(text, rest[1:]) if rest else None)
    if text.count(":") == 1:
        host, port = text.split(":")
        if not host:
            raise ValueError(f"bad SSH target {text!r}: no host before the port")
        return Endpoint(host, _port(text, port))
    return Endpoint(text, None)  # a name, an alias, or a bare IPv6 address


def _target_problem(targets: Iterable[str]) -> str | None:
    for text in targets:
        try:
            parse_target(text)
        except ValueError as exc:
            return str(exc)
    return None


def _port(text: str, port: str) -> int:
    # isascii: str.isdigit() also accepts digits such as '²' that int() refuses.
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in SSH target {text!r}: expected a number 1..65535")
    return int(port)


def expand_targets(targets: tuple[str, ...], count: int) -> list[Endpoint]:
    """The endpoint of each of ``count`` sessions, repeating ``targets`` to fill the count."""
    endpoints = [parse_target(t) for t in targets]
    return [endpoints[i % len(endpoints)] for i in range(count)]
