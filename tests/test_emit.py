"""`stressdeck emit` lines and the LineVerifier that accounts for them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.emit import LineVerifier, format_line, main

# Real processes and servers: the full suite, not the fast tier (-m "not slow").
pytestmark = pytest.mark.slow


def stream(count: int, size: int = 200, *, begin: bool = True, end: bool = True) -> bytes:
    parts = [b"SDE-BEGIN count=%d size=%d rate=0 pid=1\n" % (count, size)] if begin else []
    parts += [format_line(seq, size) for seq in range(count)]
    if end:
        parts.append(b"SDE-END lines=%d\n" % count)
    return b"".join(parts)


def test_lines_have_the_requested_width_and_a_valid_checksum() -> None:
    for size in (32, 80, 200, 1000):
        for seq in (0, 7, 123456):
            line = format_line(seq, size)
            assert len(line) == size
            body, _, crc = line.rstrip(b"\n").rpartition(b" ")
            assert int(crc, 16) == zlib.crc32(body)
            assert int(body.split()[1]) == seq


def test_a_whole_stream_in_odd_chunks_with_crlf_is_lossless() -> None:
    data = stream(5000).replace(b"\n", b"\r\n")  # what ONLCR does to it
    verifier = LineVerifier()
    for start in range(0, len(data), 997):  # chunks that split lines and CRLF pairs
        verifier.feed(data[start : start + 997])
    assert verifier.lines_ok == 5000
    assert verifier.lines_lost == 0
    assert verifier.streams_complete == 1
    assert verifier.loss_rate == 0.0


def test_gaps_corrupt_lines_and_lost_tails_are_counted_in_lines_and_bytes() -> None:
    lines = stream(100, 100).splitlines(keepends=True)  # header, 100 lines, trailer
    del lines[11:14]  # seq 10, 11, 12 lost
    lines[50] = lines[50].replace(b"SDE 0000000", b"SDE 0000009")  # corrupted in flight
    del lines[-5:-1]  # the last four data lines lost; trailer arrives
    verifier = LineVerifier()
    verifier.feed(b"".join(lines))
    assert verifier.lines_corrupt == 1
    assert verifier.lines_lost == 3 + 1 + 4
    assert verifier.bytes_lost == 8 * 100
    assert verifier.lines_ok == 92
    assert verifier.loss_rate == pytest.approx(8 / 100)
    delta = verifier.take_delta()
    assert (delta.ok, delta.lost, delta.bytes_lost) == (92, 8, 800)
    assert verifier.take_delta().ok == 0


def test_a_crash_cuts_a_stream_without_counting_loss_and_a_restart_begins_again() -> None:
    first = stream(50, end=False)
    torn = format_line(50, 200)[:77]  # the program died mid-line
    verifier = LineVerifier()
    verifier.feed(first + torn)
    verifier.end_stream()
    verifier.feed(stream(20))
    assert verifier.lines_ok == 70
    assert verifier.lines_lost == 0
    assert verifier.lines_corrupt == 0
    assert verifier.streams == 2


def test_other_output_is_ignored() -> None:
    verifier = LineVerifier()
    verifier.feed(b"$ ls\r\nfoo bar\r\nSDE is a word\r\n")
    verifier.feed(stream(3))
    assert verifier.lines_ok == 3
    assert verifier.lines_lost == 0
    assert verifier.other_lines >= 2


def test_emit_writes_a_verifiable_stream_and_exits_with_the_code_asked() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "console.emit",
            "--count",
            "2000",
            "--size",
            "64",
            "--exit-code",
            "4",
        ],
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 4
    verifier = LineVerifier()
    verifier.feed(proc.stdout)
    assert (verifier.lines_ok, verifier.lines_lost, verifier.streams_complete) == (2000, 0, 1)
    assert len(proc.stdout) > 2000 * 64


def test_emit_paces_its_rate() -> None:
    # In a subprocess: emit's main() sets SIGPIPE to SIG_DFL, which in the pytest process would
    # kill the whole suite (exit 141) when a later test writes to a dead child's pipe.
    argv = [sys.executable, "-m", "console.emit", "--count", "300", "--rate", "1000"]
    started = time.monotonic()
    proc = subprocess.run([*argv, "--size", "40"], capture_output=True, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0
    assert elapsed >= 0.25  # 300 lines at 1000/s cannot come sooner; later is only load
    verifier = LineVerifier()
    verifier.feed(proc.stdout)
    assert verifier.lines_ok == 300


def test_the_test_process_keeps_ignoring_sigpipe() -> None:
    """Python ignores SIGPIPE (BrokenPipeError instead); no test may switch that off."""
    assert signal.getsignal(signal.SIGPIPE) is signal.SIG_IGN


def test_emit_rejects_a_line_too_short_for_its_fields() -> None:
    with pytest.raises(SystemExit):
        main(["--size", "10"])


def _counts(v: LineVerifier) -> tuple[int, ...]:
    return (
        v.lines_ok,
        v.lines_lost,
        v.bytes_lost,
        v.lines_corrupt,
        v.lines_duplicate,
        v.other_lines,
        v.streams,
        v.streams_complete,
        v.expected,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["keep", "drop", "twice", "flip", "other"]), st.integers(0, 79)),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 700),
    st.booleans(),
)
def test_chunked_feeding_counts_what_line_by_line_checking_counts(
    edits: list[tuple[str, int]], chunk: int, crlf: bool
) -> None:
    """The hot loop's inline checks agree with the line-by-line path on damaged streams."""
    lines = [b"SDE-BEGIN count=40 size=80 rate=0 pid=1\n"]
    for seq, (edit, at) in enumerate(edits):
        line = format_line(seq, 80)
        if edit == "drop":
            continue
        if edit == "flip":
            line = line[:at] + bytes([line[at] ^ 0x20]) + line[at + 1 :] if at < 79 else line
        lines += [line, line] if edit == "twice" else [b"$ prompt\n"] if edit == "other" else [line]
    lines.append(b"SDE-END lines=%d\n" % len(edits))
    data = b"".join(lines)
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    chunked = LineVerifier()
    for i in range(0, len(data), chunk):
        chunked.feed(data[i : i + chunk])
    reference = LineVerifier()
    for line in data.split(b"\n")[:-1]:
        reference._line(line)
    assert _counts(chunked) == _counts(reference)
