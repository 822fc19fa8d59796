"""The command palette's actions (ctrl+p): every action of the key table, with its key.

Built from :data:`console.bindings.APP_KEYS`, the one key table, so an action added there is in
the palette too; the key shown is the profile's remap when it has one.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.bindings import APP_KEYS

__all__ = ["KeyTableCommands"]


class KeyTableCommands(Provider):
    """Drop, kill, hang, restart, pause, rate, burst, export, log, filter, help, ... by name."""

    def _entries(self) -> Iterator[tuple[str, str, str]]:
        """(title with its key, help text, action) for each action in the key table."""
        keymap: dict[str, str] = dict(getattr(self.app, "_profile_keys", {}) or {})
        for spec in APP_KEYS:
            keys = [k.strip() for k in keymap.get(spec.id, spec.key).split(",") if k.strip()]
            shown = " ".join(
                spec.key_display
                if spec.key_display and spec.id not in keymap
                else self.app.get_key_display(Binding(key, spec.action))
                for key in keys
            )
            title = f"{spec.description} ({shown})"
            yield title, spec.tooltip or spec.description, spec.action

    async def discover(self) -> Hits:
        for title, help_text, action in self._entries():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._entries():
            score = max(matcher.match(title), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    help=help_text,
                )
