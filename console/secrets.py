"""Secrets of a run: which environment variables carry them, and the one redactor.

A profile reaches secrets in three ways: ``${env.NAME}`` references and ``passphrase_env``
name environment variables; ``[[http]].env`` tables and fields declared ``opt(secret=True)``
hold values; and URLs, headers and bodies carry credentials inline (``user:pw@``,
``?token=``, ``X-Api-Key``). :class:`Secrets` gathers all of them once, at the start of a run,
and is then used two ways:

* **redaction**, by name and by value: every writer (the event log, ``snapshot-N.json``,
  ``report.md``, ``junit.xml``) passes what it writes through :meth:`Secrets.redact` /
  :meth:`Secrets.text`, which replace every secret value wherever it appears, strip URL
  userinfo and secret-looking query values, and (for the profile's own text) blank every key
  whose name or declaration says secret;
* **scrubbing children's environments**: :meth:`Secrets.child_env` is the console's
  environment minus every secret-bearing variable, which PTY programs, HTTP workers and the
  embedded targets start from. A profile that wants a child to have one passes it explicitly
  (a PTY group's ``env = { TOKEN = "${env.TOKEN}" }``).

Literal values of declared-secret fields (request bodies, check values) are replaced wherever
they appear only from :data:`MIN_LITERAL` characters on: ``equals = "true"`` is no secret, and
replacing every "true" in a report would make it unreadable. They are always blanked where
the profile itself is copied. Values that came from the environment are replaced from
:data:`MIN_SECRET` characters on.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.profile import Profile

__all__ = [
    "ENV_REF",
    "MASK",
    "NO_SECRETS",
    "REDACTED",
    "SECRET_KEY",
    "Secrets",
    "redact",
    "secret_keys",
]

REDACTED = "***redacted***"  # a whole field blanked by name
MASK = "***"  # a secret value cut out of a longer text
MIN_SECRET = 3
MIN_LITERAL = 6

ENV_REF = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_KEY = re.compile(
    r"pass(word|phrase)?|secret|token|api[_-]?key|private[_-]?key|authorization|cookie|credential",
    re.IGNORECASE,
)
# Header and query parameter names that carry credentials (X-Api-Key, X-Auth-Token, ?sig=).
_SECRET_PARAM = r"auth|token|key|secret|pass|session|cookie|sig|credential"
_SECRET_HEADER = re.compile(_SECRET_PARAM, re.IGNORECASE)
_USERINFO = re.compile(r"(?<=://)[^/?#@\s\"'<>]+@")
_QUERY = re.compile(
    rf"(?P<key>[?&;][^=&#\s\"'<>]*(?:{_SECRET_PARAM})[^=&#\s\"'<>]*=)(?P<value>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)


def secret_keys(kinds: Iterable[str]) -> frozenset[str]:
    """Keys declared ``opt(secret=True)`` in these kinds' configs, at any depth."""
    from console.config import nested_tables
    from console.sessions import get_kind

    found: set[str] = set()
    pending = [get_kind(name).config_type for name in kinds]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        found |= {f.name for f in dataclasses.fields(cls) if f.metadata.get("secret")}
        pending += [table for _, table in nested_tables(cls)]
    return frozenset(found)


def redact(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """A copy of a TOML value with every secret key's value replaced: keys declared secret in
    a config class, keys whose names say secret (``password``, ``token``, ``Authorization``)
    and credential-carrying headers (``X-Api-Key``).

    Keys that only *name* where a secret lives (``passphrase_env``, ``key_file``) are kept:
    they hold no secret and the report is more useful with them.
    """
    return _redact_keys(value, secrets, headers=False)


def _redact_keys(value: Any, secrets: frozenset[str], *, headers: bool) -> Any:
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            names_only = key.endswith(("_env", "_file", "_path"))
            secret = key in secrets or (
                (_SECRET_HEADER if headers else SECRET_KEY).search(key) and not names_only
            )
            if secret and not isinstance(item, Mapping):
                out[key] = REDACTED
            elif secret:  # a declared-secret table (an env table): keep its keys, blank values
                out[key] = {k: REDACTED for k in item}
            else:
                out[key] = _redact_keys(item, secrets, headers=key.lower() == "headers")
        return out
    if isinstance(value, (list, tuple)):
        return [_redact_keys(v, secrets, headers=False) for v in value]
    return value


def _strings(value: Any, key: str = "", parent: str = "") -> Iterator[tuple[str, str, str]]:
    """Every string leaf of a TOML value, with its key and its parent's key."""
    if isinstance(value, str):
        yield parent, key, value
    elif isinstance(value, Mapping):
        for k, item in value.items():
            yield from _strings(item, str(k), key)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item, key, parent)


def _declared(config: Any) -> Iterator[tuple[bool, str]]:
    """String values of a config's declared-secret fields: (is an env table, value)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        return
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("secret"):
            for _, _, text in _strings(value):
                yield f.name == "env", text
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from _declared(item)
        else:
            yield from _declared(value)


def _inline(text: str) -> Iterator[str]:
    """Credentials written inline in a string: URL userinfo and secret-looking query values."""
    for match in _USERINFO.finditer(text):
        userinfo = match.group(0)[:-1]
        yield userinfo
        yield from userinfo.split(":", 1)[1:]
    for match in _QUERY.finditer(text):
        yield match.group("value")


@dataclasses.dataclass(frozen=True)
class Secrets:
    """Secret-bearing environment variable names and secret values (longest first)."""

    names: frozenset[str] = frozenset()
    values: tuple[str, ...] = ()
    keys: frozenset[str] = frozenset()  # config keys declared secret, blanked by name

    @classmethod
    def from_profile(cls, profile: Profile, environ: Mapping[str, str] | None = None) -> Secrets:
        environ = os.environ if environ is None else environ
        names: set[str] = set()
        strong: set[str] = set()
        literal: set[str] = set()
        for parent, key, text in _strings(dict(profile.data)):
            names.update(ENV_REF.findall(text))
            if key == "passphrase_env" and text:
                names.add(text)
            strong.update(_inline(text))
            if parent.lower() == "headers" and _SECRET_HEADER.search(key):
                strong.add(text.split(" ", 1)[-1])  # "Bearer abc": the token is the secret
        for group in profile.groups:
            for is_env, text in _declared(group.config):
                (strong if is_env else literal).add(text)
        strong.update(environ[name] for name in names if environ.get(name))
        values = {v for v in strong if len(v) >= MIN_SECRET}
        values |= {v for v in literal if len(v) >= MIN_LITERAL}
        # A template is not the value sent: its ${env.X} parts are in `values` already.
        values = {v for v in values if "${" not in v}
        return cls(
            names=frozenset(names),
            values=tuple(sorted(values, key=len, reverse=True)),
            keys=secret_keys(profile.kinds),
        )

    # -- redaction ----------------------------------------------------------------------------

    def text(self, text: str) -> str:
        """``text`` with every secret value, URL userinfo and secret query value masked."""
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        if "@" in text and "://" in text:
            text = _USERINFO.sub(MASK + "@", text)
        if "=" in text:
            text = _QUERY.sub(lambda m: m.group("key") + MASK, text)
        return text

    def redact(self, value: Any) -> Any:
        """A copy of a JSON-like value with :meth:`text` applied to every string in it."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact(v) for v in value]
        return value

    def profile_content(self, data: Mapping[str, Any]) -> Any:
        """The profile's own text for an export: secret keys blanked, then secret values."""
        return self.redact(redact(dict(data), self.keys))

    # -- children -----------------------------------------------------------------------------

    def child_env(
        self, explicit: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The environment a child starts from: ``base`` (the console's own) minus every
        secret-bearing variable, plus what the profile passes ``explicit``-ly."""
        env = {k: v for k, v in (os.environ if base is None else base).items()}
        for name in self.names:
            env.pop(name, None)
        if explicit:
            env.update(explicit)
        return env


NO_SECRETS = Secrets()
