"""Stressdeck: a terminal console for interactive stress, soak and fault-injection testing.

The ``console`` package is the engine and the command line; it never imports Textual
except in :mod:`console.ui.app`, which the CLI loads only when a console is wanted.
"""

__version__ = "0.1.0"
