"""Small typed messages between the engine thread, the app and its widgets.

The engine thread posts :class:`SnapshotReady` (``post_message`` is thread-safe); because it
implements ``can_replace``, a snapshot still waiting in the queue is replaced by a newer one
instead of both being drawn, so a busy UI skips frames rather than falling behind.
"""

from __future__ import annotations

from textual.message import Message

from console.snapshot import RunSnapshot

__all__ = ["SessionFocused", "SessionOpened", "SnapshotReady"]


class SnapshotReady(Message):
    """The engine published a new snapshot."""

    def __init__(self, snapshot: RunSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class SessionOpened(Message):
    """A pane was double-clicked: open its detail, as Enter does."""

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id


class SessionFocused(Message):
    """The focused pane changed; the app remembers it as the target of pane keys."""

    def __init__(self, session_id: str | None) -> None:
        super().__init__()
        self.session_id = session_id
