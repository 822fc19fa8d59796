"""The ``[[pty]]`` group's keys: the program, its terminal, its input script and restart policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from console.config import GroupConfig, opt


@dataclass(frozen=True, kw_only=True)
class PtyConfig(GroupConfig):
    """A group of identical programs, each on its own pseudo-terminal."""

    command: str | tuple[str, ...] = opt(
        doc='The program: an argv list (`["stressdeck", "emit", "--rate", "500"]`) run '
        "directly, or a string run by `shell -c` (pipes, globs, `&&`).",
    )
    shell: str = opt("/bin/sh", doc="The shell that runs a string `command`.")
    env: dict[str, str] = opt(
        {},
        doc="Extra environment variables; `{name}` and `{index}` in values become the "
        "session's group and index, `${env.NAME}` the console's variable NAME (the way to pass "
        "the program a variable the profile uses as a secret).",
    )
    inherit_env: bool = opt(
        True,
        doc="Start from the console's own environment, minus the variables the profile uses as "
        "secrets (false: only `env`, TERM and PATH).",
    )
    cwd: str = opt(
        "", doc="Working directory; relative to the profile's directory. Empty: the console's."
    )
    term: str = opt("xterm-256color", doc="TERM for the program.")
    cols: int = opt(120, doc="Terminal width in columns.")
    rows: int = opt(40, doc="Terminal height in rows.")
    input: tuple[str, ...] = opt(
        (), doc="Lines typed into the program (Enter appended), for REPLs and shells."
    )
    input_delay: float = opt(0.5, unit="duration", doc="Wait before typing the first input line.")
    input_interval: float = opt(1.0, unit="duration", doc="Wait between input lines.")
    input_repeat: bool = opt(False, doc="Start the input script again after its last line.")
    idle_after: float = opt(
        5.0, unit="duration", doc="Silence after which a running session shows as `idle`."
    )
    keep_output: bool = opt(
        False,
        doc="Write every byte of output to `<run_dir>/output/<session>.log` (buffered; lossless).",
    )
    display_bytes: float = opt(
        65536, unit="size", doc="Raw output kept in memory for the console's view (bounded)."
    )
    crash_lines: int = opt(20, doc="Output lines kept in each `crashed` event.")
    restart: Literal["always", "on-crash", "never"] = opt(
        "on-crash",
        doc="Restart policy: `always` (even after exit code 0), `on-crash` (a signal or "
        "non-zero exit), `never`.",
    )
    max_restarts: int = opt(0, doc="Give up after this many automatic restarts (0: no limit).")
    backoff: float = opt(
        0.2, unit="duration", doc="Delay before the first restart; doubles on each crash."
    )
    backoff_max: float = opt(
        10.0, unit="duration", doc="Longest restart delay; a program living this long resets it."
    )
    crash_loop_count: int = opt(
        5, doc="This many unsolicited crashes within `crash_loop_window` is a crash loop (0: off)."
    )
    crash_loop_window: float = opt(30.0, unit="duration", doc="Window of the crash-loop check.")
    stop_grace: float = opt(
        2.0, unit="duration", doc="At the end, SIGTERM first and SIGKILL after this long."
    )
    memory_warmup: float = opt(
        10.0, unit="duration", doc="Ignore this much of each program's start for memory growth."
    )
    memory_min_span: float = opt(
        20.0,
        unit="duration",
        doc="Report memory growth once it is measured over at least this long.",
    )
