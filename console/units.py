"""Units people write naturally in profiles: ``500ms``, ``5s``, ``30m``, ``200MB``, ``100/s``, ``90%``.

Every parser returns a float in the engine's base unit and raises :class:`UnitError` with a
message that says what was expected. Base units: durations in **seconds**, sizes in **bytes**,
rates in **per second**, percentages as a **fraction** (``90%`` -> ``0.9``).

A bare number is accepted where it is unambiguous: it is taken in the base unit (seconds,
bytes, per second); a bare number for a percentage is taken as a fraction when <= 1.
"""

from __future__ import annotations

import math
import re

from console.errors import UnitError

__all__ = [
    "UnitError",
    "format_bytes",
    "format_duration",
    "parse_address",
    "parse_duration",
    "parse_percent",
    "parse_rate",
    "parse_size",
]


_NUMBER = r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)"

_DURATION_UNITS = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION_PART = re.compile(_NUMBER + r"\s*(us|µs|ms|s|min|m|h|d)")

_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
}
_SIZE = re.compile(_NUMBER + r"\s*([a-zA-Z]*)")

_RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 1 / 60, "min": 1 / 60, "h": 1 / 3600}
_RATE = re.compile(_NUMBER + r"\s*/\s*([a-z]+)")


def parse_duration(value: object) -> float:
    """Seconds from ``"500ms"``, ``"5s"``, ``"30m"``, ``"1h30m"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise UnitError("expected a duration such as '500ms', '5s' or '30m'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise UnitError(f"a duration must be a finite number, got {value!r}")
        if value < 0:
            raise UnitError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise UnitError("expected a duration such as '500ms', '5s' or '30m'")
    text = value.strip()
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        raise UnitError(
            f"bad duration {value!r}: expected a number with a unit (us, ms, s, m, h, d), "
            "such as '500ms', '5s' or '30m'"
        )
    return total


def parse_size(value: object) -> float:
    """Bytes from ``"200MB"``, ``"10MiB"``, ``"512KB"`` or a bare number of bytes."""
    if isinstance(value, bool):
        raise UnitError("expected a size such as '512KB' or '200MB'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise UnitError(f"a size must be a finite number, got {value!r}")
        if value < 0:
            raise UnitError("a size cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise UnitError("expected a size such as '512KB' or '200MB'")
    match = _SIZE.fullmatch(value.strip())
    unit = match.group(2).lower() if match else ""
    if not match or (unit and unit not in _SIZE_UNITS):
        raise UnitError(
            f"bad size {value!r}: expected a number with a unit (B, KB, MB, GB, KiB, MiB, GiB), "
            "such as '200MB'"
        )
    return float(match.group(1)) * _SIZE_UNITS.get(unit, 1)


def parse_rate(value: object) -> float:
    """Events per second from ``"100/s"``, ``"600/m"``, ``"5/h"`` or a bare number per second."""
    if isinstance(value, bool):
        raise UnitError("expected a rate such as '100/s'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise UnitError(f"a rate must be a finite number, got {value!r}")
        if value < 0:
            raise UnitError("a rate cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise UnitError("expected a rate such as '100/s'")
    match = _RATE.fullmatch(value.strip())
    if not match or match.group(2) not in _RATE_UNITS:
        raise UnitError(f"bad rate {value!r}: expected a count per unit time, such as '100/s'")
    return float(match.group(1)) * _RATE_UNITS[match.group(2)]


def parse_percent(value: object) -> float:
    """A fraction from ``"90%"``, ``"0.5%"`` or a bare fraction between 0 and 1."""
    if isinstance(value, bool):
        raise UnitError("expected a percentage such as '90%'")
    if isinstance(value, (int, float)):
        if not 0 <= value <= 1:  # also refuses nan
            raise UnitError(
                f"bad percentage {value!r}: write it with a % sign ('90%') or as a fraction 0..1"
            )
        return float(value)
    if not isinstance(value, str):
        raise UnitError("expected a percentage such as '90%'")
    match = re.fullmatch(_NUMBER + r"\s*%", value.strip())
    if not match:
        raise UnitError(f"bad percentage {value!r}: expected a number with a % sign, such as '90%'")
    return float(match.group(1)) / 100.0


def parse_address(value: object, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``(host, port)`` from ``"127.0.0.1:9464"``, ``"[::1]:9464"``, ``":9464"`` or ``"9464"``;
    with no host, ``default_host`` (loopback: nothing is exposed unless a host is written)."""
    if not isinstance(value, str):
        raise UnitError("expected an address such as '127.0.0.1:9464'")
    text = value.strip()
    host, port = default_host, text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in text:
        host, _, port = text.rpartition(":")
        host = host or default_host
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise UnitError(f"bad address {value!r}: expected host:port, such as '127.0.0.1:9464'")
    return host, int(port)


def format_duration(seconds: float) -> str:
    """Short human text for a duration: ``0.25ms``, ``1.23ms``, ``45.6ms``, ``850ms``, ``12.3s``,
    ``4m05s``, ``1h02m``."""
    if not math.isfinite(seconds):
        return str(seconds)
    if 0 < abs(seconds) < 0.001:
        # Below a millisecond two significant figures, so 0.1 ms does not read as 0ms.
        return f"{seconds * 1000:.2g}ms"
    if seconds < 1:
        # Three significant figures below 100 ms: loopback latencies are 1.23ms, not 1ms.
        ms = seconds * 1000
        return f"{ms:.2f}ms" if ms < 10 else f"{ms:.1f}ms" if ms < 100 else f"{ms:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def format_bytes(count: float) -> str:
    """Short human text for a size in bytes: ``512B``, ``12.0KB``, ``3.4MB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.1f}{unit}"
    return f"{count:.0f}B"
