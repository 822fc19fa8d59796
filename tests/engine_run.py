"""Run the CLI with the in-process test kind registered: ``python -m tests.engine_run ARGS``.

The SIGKILL, exit-status and import-hygiene tests need a real ``stressdeck`` process whose
sessions are cheap and deterministic.
"""

import sys

from console.cli import main
from console.sessions import KIND_MODULES

KIND_MODULES["fake"] = "tests.fake_kind"
sys.exit(main(sys.argv[1:]))
