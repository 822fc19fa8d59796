"""SVG pictures of the console on every bundled profile, at 80x24, 120x40 and 200x60.

Each profile really runs for a few seconds (embedded targets, real sessions) behind the console
in Textual's headless test driver, then the screen is saved at each size: the pictures an
operator would see, to look at before accepting a layout change (issue 11: "look at SVG
snapshots of every bundled profile at the three sizes as pictures"). Not a test: the content
is live, so it is looked at, not compared.

    PYTHONPATH=$PWD python3 bench/profile_shots.py --out /tmp/shots [--seconds 8] [NAME ...]

Convert to PNG to look at them, for example with
``chromium --headless --screenshot=x.png --window-size=W,H file:///…/demo-120x40.svg``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from console.profile import bundled_profiles, load_profile
from console.ui.app import make_app

SIZES = ((80, 24), (120, 40), (200, 60))


async def shoot(path: Path, out: Path, seconds: float) -> list[Path]:
    profile = load_profile(path)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as runs:
        app = make_app(profile, runs_dir=Path(runs), duration=seconds + 30)
        try:
            async with app.run_test(size=SIZES[-1]) as pilot:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    await pilot.pause(0.25)
                for width, height in SIZES:
                    await pilot.resize_terminal(width, height)
                    await pilot.pause(0.6)  # a snapshot or two at the new size
                    target = out / f"{profile.name}-{width}x{height}.svg"
                    target.write_text(app.export_screenshot(title=target.stem))
                    written.append(target)
        finally:
            if app.controller is not None:
                app.controller.stop()
                app.controller.result(timeout=30)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bundled profile names (default: all)")
    parser.add_argument("--out", type=Path, default=Path("shots"))
    parser.add_argument("--seconds", type=float, default=8.0, help="run time before the shots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in bundled_profiles():
        if args.names and path.stem not in args.names:
            continue
        for written in asyncio.run(shoot(path, args.out, args.seconds)):
            print(written)


if __name__ == "__main__":
    main()
