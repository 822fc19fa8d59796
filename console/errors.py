"""Every error Stressdeck raises on purpose, in one tree, and the exit statuses they lead to.

::

    StressdeckError
    ├── ProfileError          a profile that cannot run: every issue with file:line: key (exit 2)
    ├── RunDirError           the run directory cannot be created or written (exit 2)
    ├── UsageError            a bad value before anything starts (ValueError too)
    │   ├── UnitError           "5 parsecs": a value whose unit is missing or unknown
    │   ├── CriterionError      a threshold that does not parse or does not fit its metric
    │   └── ReplayError         a --replay source that cannot be read
    ├── ClusterError          the Ray cluster cannot be reached or started (ends the run)
    ├── TargetError           an embedded target that did not start or stopped answering
    │   └── TargetUnavailable   it cannot take a control command now
    ├── FaultNotApplicable    this fault does not apply to this session now (shown, not fatal)
    └── SessionError          one session's work failed; its pane shows it, the run goes on
        ├── ConnectError        an SSH connection attempt failed (``final``: do not retry)
        │   ├── HostKeyRejected   unknown or changed host key
        │   ├── SshConfigError    the OpenSSH client config cannot be used (file and line)
        │   └── KeyUnusable       the client key cannot be loaded
        ├── ChannelError        an SSH PTY cycle failed
        ├── RequestError        an HTTP request got no response (``cls``: timeout, refused, ...)
        ├── WorkerError         an HTTP worker process failed
        └── NodeLost            a cluster node (or its actor) died under a session

Messages are short and safe to show and log: they never carry a secret, and text that came
from outside is sanitized before it is put in one. A ``SessionError`` never ends a run; a
``ProfileError`` or ``UsageError`` ends it before any session starts (exit 2); a
``TargetError`` fails the sessions that need that target.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Protocol

__all__ = [
    "ChannelError",
    "ClusterError",
    "ConnectError",
    "CriterionError",
    "ExitStatus",
    "FaultNotApplicable",
    "HostKeyRejected",
    "KeyUnusable",
    "NodeLost",
    "ProfileError",
    "ReplayError",
    "RequestError",
    "RunDirError",
    "SessionError",
    "SshConfigError",
    "StressdeckError",
    "TargetError",
    "TargetUnavailable",
    "UnitError",
    "UsageError",
    "WorkerError",
]


class ExitStatus(IntEnum):
    """The process exit statuses, the same for headless runs and the console."""

    OK = 0  # every criterion passed
    FAILED = 1  # a criterion failed, or abort_on_fail ended the run
    USAGE = 2  # a bad profile, option or value: nothing ran
    # Nothing failed, but some criterion could not be judged (its fault was scheduled after the
    # end, its metric got no data): not a pass, and not a failure of the system under test.
    NOT_JUDGED = 3
    INTERRUPTED = 130  # Ctrl-C, SIGTERM or the terminal went away; the summary is still written


class StressdeckError(Exception):
    """The base of every error Stressdeck raises on purpose."""


class _Issue(Protocol):
    """One problem in a profile (``console.profile.ProfileIssue``)."""

    @property
    def line(self) -> int | None: ...
    @property
    def key(self) -> str: ...
    @property
    def message(self) -> str: ...


class ProfileError(StressdeckError):
    """A profile that cannot be run. ``issues`` lists every problem found, in file order."""

    def __init__(self, issues: Sequence[_Issue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line or 0, i.key))
        super().__init__("\n".join(str(i) for i in self.issues))


class RunDirError(StressdeckError):
    """The run directory cannot be created or written: raised by ``Run`` before anything
    starts, so the CLI can exit 2 with this message instead of a traceback."""


class UsageError(StressdeckError, ValueError):
    """A value that cannot be used; raised before anything starts."""


class UnitError(UsageError):
    """A value whose unit is missing, unknown or malformed."""


class CriterionError(UsageError):
    """A threshold expression that cannot be parsed or does not fit its metric."""


class ReplayError(UsageError):
    """The replay source cannot be read."""


class ClusterError(StressdeckError):
    """The Ray cluster cannot be reached or started, or the ``cluster`` extra is missing."""


class TargetError(StressdeckError):
    """An embedded target did not start, or stopped answering."""


class TargetUnavailable(TargetError):
    """The embedded target cannot take a command: it is gone, its pipe broke, or it is silent."""


class FaultNotApplicable(StressdeckError):
    """Raised by ``Session.inject`` when an action does not apply to this session now.

    The message is shown to the operator ("pty#2 has already exited"), so keep it short.
    """


class SessionError(StressdeckError):
    """One session's work failed; the session shows it and the run goes on."""


class ConnectError(SessionError):
    """A connection attempt failed; the message is short and safe to log.

    ``final`` failures are not retried: another attempt cannot fix them.
    """

    final = False


class HostKeyRejected(ConnectError):
    """The server's host key is unknown or changed: retrying would hide a possible attack."""

    final = True


class SshConfigError(ConnectError):
    """The OpenSSH client config cannot be used; the message names the file and the line."""

    final = True


class KeyUnusable(ConnectError):
    """The configured key cannot be loaded (missing passphrase variable, unreadable file)."""

    final = True


class ChannelError(SessionError):
    """A PTY cycle on an SSH channel failed (timeout, shell gone); the message is the detail."""


class RequestError(SessionError):
    """A request that got no HTTP response; ``cls`` is its error class (timeout, refused, ...)."""

    def __init__(self, cls: str, detail: str) -> None:
        super().__init__(detail)
        self.cls = cls


class WorkerError(SessionError):
    """An HTTP worker process could not start or exited with an error."""


class NodeLost(SessionError):
    """The cluster node running a session's actor died (or the actor did); ``cause`` is Ray's."""

    def __init__(self, cause: str, node: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.node = node
