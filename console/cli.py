"""The ``stressdeck`` command: thin on purpose; the work lives in the engine and the app.

stressdeck                         the console on the bundled demo profile
stressdeck run PROFILE [--headless] [--duration D] [--runs-dir DIR]
stressdeck run PROFILE --replay RUN   the same, re-injecting a previous run's key faults
   ... --metrics-listen ADDR --out json=FILE --summary-export FILE   outputs for other tools
stressdeck faults RUN              a previous run's key faults as [[faults]] TOML
stressdeck diff RUN_A RUN_B        is B worse than A beyond the noise? (exit 1 if so)
stressdeck freeze RUN -o FILE      the run as a CI profile: its faults and observed criteria
stressdeck validate PROFILE        check a profile; exit 2 with file:line: key: message
stressdeck profiles                the bundled profiles, one line each
stressdeck emit ...                sequence-numbered output for PTY loss accounting
stressdeck target ssh|http ...     an embedded target server, in the foreground
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from console import __version__, units
from console.config import field_problem
from console.errors import ExitStatus, RunDirError
from console.profile import ProfileError, RunConfig, bundled_profiles, load_profile
from console.replay import ReplayError, load_replay, to_toml

__all__ = ["main"]

DEMO = "demo"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stressdeck",
        description="A terminal console for interactive stress, soak and fault-injection testing.",
    )
    parser.add_argument("--version", action="version", version=f"stressdeck {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a profile (the console, or --headless)")
    run.add_argument("profile", help="a profile path or a bundled profile name")
    run.add_argument(
        "--headless",
        action="store_true",
        help="no console: progress lines, a summary and an exit status",
    )
    run.add_argument("--duration", help="override the run's duration, such as 90s or 30m")
    run.add_argument(
        "--runs-dir",
        default=os.environ.get("STRESSDECK_RUNS_DIR", "runs"),
        help="where run directories go (default: ./runs or $STRESSDECK_RUNS_DIR)",
    )
    run.add_argument(
        "--replay",
        metavar="RUN",
        help="re-inject the faults sent by keys in a previous run (its directory or events.jsonl)",
    )
    run.add_argument(
        "--metrics-listen",
        metavar="ADDR",
        help="serve Prometheus /metrics on host:port while the run lasts (bare :PORT: loopback)",
    )
    run.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the HTTP workers as Ray actors: a Ray address, or local:N for a local cluster "
        "with N worker nodes (needs the cluster extra)",
    )
    run.add_argument(
        "--out",
        metavar="json=FILE",
        action="append",
        default=[],
        help="write k6's JSON output (Metric and Point lines) to FILE, as k6 run --out json=FILE",
    )
    run.add_argument(
        "--summary-export",
        metavar="FILE",
        help="write k6's end-of-test summary JSON to FILE, as k6 run --summary-export",
    )
    faults = sub.add_parser("faults", help="print a previous run's key faults as [[faults]] tables")
    faults.add_argument("run", help="a run directory or its events.jsonl")
    diff = sub.add_parser(
        "diff", help="compare two runs metric by metric and fault by fault; exit 1 on regression"
    )
    diff.add_argument("run_a", help="the earlier run (its directory or a snapshot-N.json)")
    diff.add_argument("run_b", help="the run to judge")
    diff.add_argument(
        "--max-regression",
        default="10%",
        help="how much worse a figure may get before it counts (default 10%%)",
    )
    diff.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    diff.add_argument("--all", action="store_true", help="list unchanged figures too")
    freeze = sub.add_parser(
        "freeze", help="write a run's profile, faults and observed criteria as a CI profile"
    )
    freeze.add_argument("run", help="a run directory or its snapshot-N.json")
    freeze.add_argument("-o", "--output", help="the profile to write (default: stdout)")
    validate = sub.add_parser("validate", help="check a profile without running it")
    validate.add_argument("profile")
    sub.add_parser("profiles", help="list the bundled profiles")
    sub.add_parser(
        "emit", help="print sequence-numbered lines (see 'stressdeck emit --help')", add_help=False
    )
    target = sub.add_parser(
        "target", help="run an embedded target server ('ssh' or 'http')", add_help=False
    )
    target.add_argument("which", choices=("ssh", "http"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Subcommands with their own parsers get their arguments untouched.
    if args_list[:1] == ["emit"]:
        from console.emit import main as emit_main

        return emit_main(args_list[1:])
    if args_list[:1] == ["target"] and len(args_list) > 1 and args_list[1] in ("ssh", "http"):
        if args_list[1] == "ssh":
            from console.targets.ssh_server import main as target_main
        else:
            from console.targets.http_server import main as target_main
        return target_main(args_list[2:])

    parser = _parser()
    args = parser.parse_args(args_list)
    try:
        if args.command is None:
            return _run(
                DEMO,
                headless=False,
                duration=None,
                runs_dir=os.environ.get("STRESSDECK_RUNS_DIR", "runs"),
            )
        if args.command == "run":
            return _run(
                args.profile,
                headless=args.headless,
                duration=args.duration,
                runs_dir=args.runs_dir,
                replay=args.replay,
                overrides=_run_overrides(args),
            )
        if args.command == "faults":
            print(to_toml(load_replay(Path(args.run))), end="")
            return 0
        if args.command == "diff":
            return _diff(args)
        if args.command == "freeze":
            return _freeze(args)
        if args.command == "validate":
            profile = load_profile(args.profile)
            groups = ", ".join(
                f"{g.config.count}x {g.kind}:{g.config.name}" for g in profile.groups
            )
            print(
                f"{profile.path}: ok: {profile.name}, {units.format_duration(profile.run.duration)}; "
                f"{groups}; {len(profile.faults)} fault(s), {len(profile.criteria)} criteria"
            )
            return 0
        if args.command == "profiles":
            return _list_profiles()
    except ProfileError as exc:
        print(f"stressdeck: invalid profile\n{exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except ReplayError as exc:
        print(f"stressdeck: cannot replay: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except units.UnitError as exc:
        print(f"stressdeck: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    parser.print_help()
    return ExitStatus.USAGE


def _diff(args: argparse.Namespace) -> int:
    import json

    from console.diff import DiffError, diff_runs, to_markdown

    text = args.max_regression.strip()
    try:
        limit = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        limit = math.nan
    if not 0 <= limit < math.inf:  # nan would make every comparison false: no regression ever
        raise units.UnitError(f"--max-regression {text!r}: expected 10% or 0.1")
    try:
        result = diff_runs(Path(args.run_a), Path(args.run_b), limit)
    except DiffError as exc:
        print(f"stressdeck: diff: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(to_markdown(result, all_figures=args.all))
    return ExitStatus.FAILED if result.regressions else ExitStatus.OK


def _freeze(args: argparse.Namespace) -> int:
    from console.diff import DiffError
    from console.freeze import freeze

    try:
        text = freeze(Path(args.run))
    except DiffError as exc:
        print(f"stressdeck: freeze: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    if not args.output:
        print(text, end="")
        return ExitStatus.OK
    from console.files import write_private

    try:
        # It holds the run's profile: private like every run file, and a link planted at
        # the path is replaced rather than followed.
        write_private(Path(args.output), text)
    except OSError as exc:
        print(f"stressdeck: freeze: {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return ExitStatus.USAGE
    print(
        f"{args.output}: {text.count('[[faults]]')} fault(s), "
        f"{text.count('[[criteria]]')} criteria",
        file=sys.stderr,
    )
    return ExitStatus.OK


def _run_overrides(args: argparse.Namespace) -> dict[str, str]:
    """``[run]`` keys set on the command line; they win over the profile's."""
    overrides: dict[str, str] = {}
    if args.metrics_listen:
        units.parse_address(args.metrics_listen)
        overrides["metrics_listen"] = args.metrics_listen
    if args.cluster:
        from console.cluster import check_cluster

        if (problem := check_cluster(args.cluster)) is not None:
            raise units.UnitError(f"--cluster: {problem}")
        overrides["cluster"] = args.cluster
    for out in args.out:
        kind, _, path = out.partition("=")
        if kind != "json" or not path:
            raise units.UnitError(f"--out {out}: only json=FILE is supported")
        overrides["out_json"] = path
    if args.summary_export:
        overrides["summary_export"] = args.summary_export
    return overrides


def _run(
    spec: str,
    *,
    headless: bool,
    duration: str | None,
    runs_dir: str,
    replay: str | None = None,
    overrides: dict[str, str] | None = None,
) -> int:
    seconds = None
    if duration is not None:
        try:
            seconds = units.parse_duration(duration)
        except units.UnitError as exc:
            print(f"stressdeck: --duration: {exc}", file=sys.stderr)
            return ExitStatus.USAGE
        if (problem := field_problem(RunConfig, "duration", seconds)) is not None:
            print(f"stressdeck: --duration: {problem}", file=sys.stderr)
            return ExitStatus.USAGE
    profile = load_profile(spec)
    if overrides:
        profile = profile.with_run(**overrides)
    faults = load_replay(Path(replay)) if replay else []
    if not headless and not (sys.stdout.isatty() and sys.stdin.isatty()):
        print("stressdeck: no terminal; running headless", file=sys.stderr)
        headless = True
    try:
        if headless:
            from console.headless import run_headless

            return run_headless(profile, runs_dir=Path(runs_dir), duration=seconds, replay=faults)
        from console.ui.app import run_console

        return run_console(profile, runs_dir=Path(runs_dir), duration=seconds, replay=faults)
    except RunDirError as exc:  # raised before any session starts
        print(f"stressdeck: {exc}", file=sys.stderr)
        return ExitStatus.USAGE


def _list_profiles() -> int:
    for path in bundled_profiles():
        try:
            profile = load_profile(path)
            kinds = "+".join(profile.kinds)
            print(
                f"{path.stem:<22} {kinds:<13} {units.format_duration(profile.run.duration):>7}  {profile.run.description}"
            )
        except ProfileError as exc:
            print(f"{path.stem:<22} (invalid: {exc.issues[0].message})")
    return 0
