"""The parent's side of the embedded SSH target: start it, learn where it is, command it.

The server itself (:mod:`console.targets.ssh_server`) runs in its own process, started and
spoken to the one way every Python child of the console is (:mod:`console.children`): it
announces itself with one JSON line (:class:`SshTargetInfo`), answers ``restart``,
``auth_fail``, ``drop`` and ``stats`` commands, and announces itself again after a restart.
Session kinds import this module, never the server's code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.children import ChildProcess, Message
from console.errors import TargetError, TargetUnavailable
from console.files import open_private, private_dir

__all__ = ["EmbeddedSshTarget", "SshTargetInfo", "TargetUnavailable"]

# The server's file names (console.targets.ssh_server uses the same).
HOST_KEY_NAME = "ssh_host_ed25519_key"
CLIENT_KEY_NAME = "client_ed25519_key"
KEY_FILES = (HOST_KEY_NAME, f"{HOST_KEY_NAME}.pub", CLIENT_KEY_NAME, f"{CLIENT_KEY_NAME}.pub")


def remove_keys(state_dir: Path) -> None:
    """Delete the generated keys (a server SIGKILLed at its grace period's end left them)."""
    for name in KEY_FILES:
        try:
            os.unlink(state_dir / name)
        except FileNotFoundError:
            pass


@dataclass(frozen=True)
class SshTargetInfo:
    """What a client needs to reach the embedded target (from its announcement)."""

    host: str
    port: int
    pid: int
    host_key: Path
    host_key_fingerprint: str
    client_key: Path
    known_hosts: Path
    user: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> SshTargetInfo:
        return cls(
            host=record["host"],
            port=int(record["port"]),
            pid=int(record["pid"]),
            host_key=Path(record["host_key"]),
            host_key_fingerprint=record["host_key_fingerprint"],
            client_key=Path(record["client_key"]),
            known_hosts=Path(record["known_hosts"]),
            user=record["user"],
        )


class EmbeddedSshTarget:
    """Starts the embedded SSH server in its own process and sends it control commands."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_keys: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.keep_keys = keep_keys  # False: the keys it generated are deleted when it stops
        self.env = env  # the server's (and its shells') environment; default the console's
        self.info: SshTargetInfo | None = None
        self._child: ChildProcess | None = None
        self._generated = False  # whether this start found no keys, so the server made them

    async def start(self, timeout: float = 20.0) -> SshTargetInfo:
        private_dir(self.state_dir, tighten=True)
        self._generated = not all(
            (self.state_dir / name).exists() for name in (HOST_KEY_NAME, CLIENT_KEY_NAME)
        )
        args = ["--host", self.host, "--port", str(self.port)]
        args += ["--state-dir", str(self.state_dir), "--exit-on-eof"]
        args += ["--keep-keys"] if self.keep_keys else []
        log = open_private(self.state_dir / "server.log")  # the child's stderr
        child = ChildProcess(
            "console.targets.ssh_server",
            args,
            env=self.env,
            name="the embedded SSH target",
            on_message=self._on_message,
            stderr=log,
        )
        self._child = child
        try:
            announced = await child.start(timeout)
        except TargetUnavailable as exc:
            tail = (self.state_dir / "server.log").read_text(errors="replace")[-500:]
            raise TargetError(f"{exc}: {tail}".strip()) from None
        finally:
            os.close(log)
        self.info = SshTargetInfo.from_json(announced)
        self.port = self.info.port
        return self.info

    def _on_message(self, message: Message) -> None:
        if message.get("event") == "listening":  # listening again after a restart
            self.info = SshTargetInfo.from_json(message)

    async def command(self, cmd: str, timeout: float = 10.0, **params: Any) -> dict[str, Any]:
        """Send one control command and return the target's answer to it.

        Raises :class:`TargetUnavailable` when the target is not running, its pipe breaks, it
        exits, or it does not answer within ``timeout`` seconds (its late answer is dropped).
        """
        if self._child is None:
            raise TargetUnavailable("it is not running (not started)")
        return await self._child.command(cmd, timeout, **params)

    async def restart(self, down: float) -> dict[str, Any]:
        return await self.command("restart", down=f"{down}s")

    async def auth_fail(self, count: int) -> dict[str, Any]:
        return await self.command("auth_fail", count=count)

    async def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        await child.stop()
        # The server deletes the keys it generated as it exits; this covers one that was
        # SIGKILLed at its grace period's end. Keys found here at start were not ours.
        if self._generated and not self.keep_keys:
            remove_keys(self.state_dir)
