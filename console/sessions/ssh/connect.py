"""Opening one SSH connection: keys, agent, host-key policy, timeouts and error wording.

asyncssh does the DNS resolution (``loop.create_connection`` with the host name, trying every
address it resolves to), so ``vm1.example.com:22`` works where SPIKE-2's ``.parse()`` failed,
and it reads ``~/.ssh/config`` so Host aliases, their ``Port``, ``User`` and ``IdentityFile``
apply.

Secrets: a key's passphrase comes only from the environment variable named by
``passphrase_env`` (or the agent holds the key unlocked). Key files are read once per run in a
thread (decrypting a bcrypt-protected key takes long enough to stall the event loop), and only
their paths ever appear in messages.

Host keys: verified unless the profile says ``verify_host_key = false``, and nothing in an
OpenSSH config can turn that off. asyncssh alone would take ``UserKnownHostsFile none`` for "verify
nothing" (and it ignores ``StrictHostKeyChecking``), so Stressdeck always hands it the known-hosts
files itself (:func:`known_hosts_files`): the profile's ``known_hosts``, else the files the config
names, else OpenSSH's defaults; ``none`` counts as not naming any. An unknown or changed key is
:class:`HostKeyRejected`, which the session treats as final: retrying cannot fix a changed key,
and a retry loop would hide a possible attack.

The OpenSSH config is parsed here too, before connecting (:func:`read_ssh_config`), so one that
asyncssh cannot read (``Match exec``, a missing file) is one :class:`SshConfigError` naming the
file and line, found by :meth:`SshRuntime.start <console.sessions.ssh.SshRuntime.start>` before
any session starts.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.config import SSHClientConfig, SSHConfig

from console.errors import ConnectError, HostKeyRejected, KeyUnusable, SshConfigError
from console.sessions.ssh.config import Endpoint, SshGroupConfig
from console.targets.ssh_control import SshTargetInfo

__all__ = [
    "OPENSSH_KNOWN_HOSTS",
    "ConnectError",
    "HostKeyRejected",
    "KeyStore",
    "KeyUnusable",
    "SshConfigError",
    "known_hosts_files",
    "open_connection",
    "read_ssh_config",
]

# OpenSSH's defaults: UserKnownHostsFile, then GlobalKnownHostsFile (ssh_config(5)).
OPENSSH_KNOWN_HOSTS = (
    ("~/.ssh/known_hosts", "~/.ssh/known_hosts2"),
    ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"),
)


# AES-GCM first: in asyncssh it costs the console about 30% less CPU per packet than
# chacha20-poly1305 (measured: 0.69 vs 0.96 ms per exec poll command), and every OpenSSH
# since 6.2 offers it. The rest of asyncssh's defaults follow, for servers without it.
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


@dataclass
class LoadedKey:
    key: asyncssh.SSHKey | None
    error: str = ""


class KeyStore:
    """Private keys of a run, loaded once (off the event loop) and shared by sessions."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], LoadedKey] = {}

    async def load(self, path: str, passphrase_env: str) -> LoadedKey:
        slot = (path, passphrase_env)
        if slot not in self._keys:
            self._keys[slot] = await asyncio.to_thread(_read_key, path, passphrase_env)
        return self._keys[slot]


def _read_key(path: str, passphrase_env: str) -> LoadedKey:
    passphrase = os.environ.get(passphrase_env) if passphrase_env else None
    if passphrase_env and passphrase is None:
        return LoadedKey(None, f"passphrase_env {passphrase_env} is not set")
    try:
        return LoadedKey(asyncssh.read_private_key(os.path.expanduser(path), passphrase))
    except asyncssh.KeyEncryptionError:
        return LoadedKey(None, f"wrong passphrase for key {path}")
    except asyncssh.KeyImportError as exc:
        hint = " (set passphrase_env or use the agent)" if "assphrase" in str(exc) else ""
        return LoadedKey(None, f"cannot use key {path}: {exc}{hint}")
    except OSError as exc:
        return LoadedKey(None, f"cannot read key {path}: {exc.strerror}")


class _Client(asyncssh.SSHClient):
    """Remembers why the connection ended, for the connection_lost event's detail."""

    def __init__(self) -> None:
        self.lost: Exception | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc


@dataclass
class Opened:
    conn: asyncssh.SSHClientConnection
    client: _Client


def describe(exc: BaseException) -> str:
    """Short, secret-free wording of a connection failure."""
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"authentication failed: {exc.reason}"
    if isinstance(exc, socket.gaierror):
        return f"DNS resolution failed: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


async def open_connection(
    cfg: SshGroupConfig,
    endpoint: Endpoint,
    *,
    timeout: float,
    keys: KeyStore,
    embedded: SshTargetInfo | None,
    bogus_key: bool = False,
    via: tuple[str, int] | None = None,
) -> Opened:
    """Connect and authenticate within ``timeout`` seconds, or raise :class:`ConnectError`.

    ``via`` is a link's address: TCP goes there, while asyncssh still checks the host key
    against the real ``host``/``port`` (it is handed an already-connected socket).
    """
    options: dict[str, Any] = {
        "encryption_algs": CIPHERS,
        "connect_timeout": timeout,
        "keepalive_interval": cfg.keepalive_interval,
        "keepalive_count_max": cfg.keepalive_count_max,
    }
    if cfg.ssh_config:
        options["config"] = [os.path.expanduser(cfg.ssh_config)]
    if cfg.user:
        options["username"] = cfg.user
    host, port = endpoint.host, endpoint.port
    if embedded is not None:
        host, port = embedded.host, embedded.port
        options["username"] = cfg.user or embedded.user
    if port is not None:
        options["port"] = port
    options.update(await _host_key_options(cfg, embedded, host, port))
    agent: asyncssh.SSHAgentClient | None = None
    try:
        if bogus_key:  # an injected authentication failure against a real host
            options["client_keys"] = [asyncssh.generate_private_key("ssh-ed25519")]
            options["agent_path"] = None
        else:
            agent = await _auth_options(cfg, embedded, keys, options)
        client = _Client()
        try:
            if via is not None:
                options["sock"] = await asyncio.wait_for(_connect_socket(via), timeout)
            conn, _ = await asyncio.wait_for(
                asyncssh.create_connection(lambda: client, host, **options), timeout
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyRejected(f"host key verification failed for {endpoint}: {exc}") from None
        except asyncio.TimeoutError:
            raise ConnectError(f"timed out after {timeout:g}s") from None
        except (OSError, asyncssh.Error, ValueError) as exc:
            raise ConnectError(describe(exc)) from None
        return Opened(conn, client)
    finally:
        if agent is not None:
            agent.close()


async def _connect_socket(address: tuple[str, int]) -> socket.socket:
    """A TCP socket connected to a link (closed again if connecting fails)."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _host_key_options(
    cfg: SshGroupConfig, embedded: SshTargetInfo | None, host: str, port: int | None
) -> Mapping[str, Any]:
    if not cfg.verify_host_key:
        return {"known_hosts": None}
    if embedded is not None and not cfg.known_hosts:
        # Pin the generated host key itself: valid for 127.0.0.1, localhost or any alias.
        public = await asyncio.to_thread(asyncssh.read_public_key, str(embedded.host_key) + ".pub")
        return {"known_hosts": ([public], [], [])}
    files = await asyncio.to_thread(known_hosts_files, cfg, host, port)
    # An empty list would let asyncssh pick its own default; empty key lists trust nothing.
    return {"known_hosts": files or ([], [], [])}


def config_paths(cfg: SshGroupConfig) -> list[str]:
    """The OpenSSH client config files a group reads: its ``ssh_config``, else ~/.ssh/config."""
    if cfg.ssh_config:
        return [os.path.expanduser(cfg.ssh_config)]
    default = Path("~", ".ssh", "config").expanduser()
    return [str(default)] if os.access(default, os.R_OK) else []


def read_ssh_config(cfg: SshGroupConfig, host: str, port: int | None) -> SSHConfig:
    """The config as it applies to ``host``; :class:`SshConfigError` when it cannot be read."""
    paths = config_paths(cfg)
    try:
        return SSHClientConfig.load(
            None,
            paths,
            False,
            False,
            False,
            getpass.getuser(),
            cfg.user or (),
            host,
            port if port is not None else (),
        )
    except asyncssh.ConfigParseError as exc:
        raise SshConfigError(f"SSH config {_with_line_text(str(exc))}") from None
    except OSError as exc:
        where = exc.filename or ", ".join(paths)
        raise SshConfigError(f"cannot read SSH config {where}: {exc.strerror}") from None
    except ValueError as exc:  # asyncssh's own checks of a value (a bad Port, ...)
        raise SshConfigError(f"SSH config {', '.join(paths)}: {exc}") from None


def _with_line_text(message: str) -> str:
    """asyncssh says ``FILE line N: reason``; add the line itself, which says more."""
    found = re.match(r"(.*) line (\d+): ", message)
    if found is None:
        return message
    try:
        lines = Path(found[1]).read_text(errors="replace").splitlines()
        text = lines[int(found[2]) - 1].strip()
    except (OSError, IndexError):
        return message
    return f"{message.rstrip()} ({text[:120]})"


def known_hosts_files(cfg: SshGroupConfig, host: str, port: int | None) -> list[str]:
    """The known-hosts files to verify ``host`` against: those that exist, never "none".

    The profile's ``known_hosts`` wins; else ``UserKnownHostsFile`` and ``GlobalKnownHostsFile``
    from the config, each falling back to OpenSSH's defaults when unset or ``none``.
    """
    if cfg.known_hosts:
        return [os.path.expanduser(cfg.known_hosts)]
    config = read_ssh_config(cfg, host, port)
    chosen: list[str] = []
    for option, defaults in zip(
        ("UserKnownHostsFile", "GlobalKnownHostsFile"), OPENSSH_KNOWN_HOSTS, strict=True
    ):
        named: Sequence[str] = config.get(option) or ()  # type: ignore[assignment]
        chosen += [os.path.expanduser(p) for p in (named or defaults)]
    return [p for p in dict.fromkeys(chosen) if os.path.isfile(p) and os.access(p, os.R_OK)]


async def _auth_options(
    cfg: SshGroupConfig,
    embedded: SshTargetInfo | None,
    keys: KeyStore,
    options: dict[str, Any],
) -> asyncssh.SSHAgentClient | None:
    """Fill client_keys / agent_path; return an agent connection to close after auth."""
    key_path = cfg.key_file or (str(embedded.client_key) if embedded is not None else "")
    file_keys: list[asyncssh.SSHKey] | None = None
    key_error = ""
    if cfg.auth in ("key", "both") and key_path:
        loaded = await keys.load(key_path, cfg.passphrase_env)
        if loaded.key is not None:
            file_keys = [loaded.key]
        else:
            key_error = loaded.error
    if cfg.auth == "key":
        if key_error:
            raise KeyUnusable(key_error)
        options["agent_path"] = None
        if file_keys is not None:
            options["client_keys"] = file_keys
        return None
    if cfg.auth == "agent" or (key_error and cfg.auth == "both"):
        # Agent keys only: hand them over explicitly, so no key file is tried behind our back.
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise ConnectError(f"no ssh-agent (SSH_AUTH_SOCK is not set) {key_error}".strip())
        try:
            agent = await asyncssh.connect_agent()
            agent_keys = await agent.get_keys()
        except (OSError, asyncssh.Error, ValueError) as exc:
            raise ConnectError(f"no ssh-agent ({describe(exc)}) {key_error}".strip()) from None
        if not agent_keys:
            agent.close()
            raise ConnectError(f"the ssh-agent holds no keys {key_error}".strip())
        options["client_keys"] = agent_keys
        options["agent_path"] = None
        return agent
    if file_keys is not None:  # both: asyncssh tries the agent (SSH_AUTH_SOCK) first
        options["client_keys"] = file_keys
        if embedded is not None and not cfg.key_file:
            options["agent_path"] = None  # the embedded server takes its own key only
    return None
