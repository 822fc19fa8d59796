"""The Textual side of Stressdeck: the app, its key table as Textual bindings, its messages.

Nothing outside this package and :mod:`widgets` imports Textual; the engine publishes
:class:`~console.snapshot.RunSnapshot` values and this package renders them. The import
contract in ``pyproject.toml`` (``lint-imports``) holds the line.
"""
