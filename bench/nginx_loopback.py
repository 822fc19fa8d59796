"""A throwaway nginx on 127.0.0.1 for the HTTP tests and benchmark.

Everything nginx writes (pid, logs, temp files) goes under one temporary directory, it runs in
the foreground (``daemon off``) as a child we can stop, and it serves:

* ``/index.html`` and ``/etag.json`` - static files, with nginx's own ETag and 304 handling;
* ``/slow/blob.bin`` - 30 KB at 20 KB/s per connection (``limit_rate``) with at most
  ``conn_limit`` concurrent connections per client address (``limit_conn``; an empty key such
  as an unset ``$server_name`` would not be counted): the excess gets an immediate 503,
  which is what the backpressure probe expects to see.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from console.targets.process import terminate

__all__ = ["STREAM_MODULE", "Nginx", "NginxStreamProxy", "nginx_path"]

CONF = """\
{user}daemon off;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {access_log};
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    limit_conn_zone $binary_remote_addr zone=perclient:1m;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {tmp}/www;
        location /slow/ {{
            limit_conn perclient {conn_limit};
            limit_conn_status 503;
            limit_rate 20k;
        }}
    }}
}}
"""


def nginx_path() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _launch(binary: str, conf: Path, tmp: Path, port: int) -> subprocess.Popen[bytes] | None:
    """nginx with ``conf``, once it accepts connections on ``port``; None if it did not in 5 s
    (then it is stopped)."""
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    terminate(proc)
    return None


class Nginx:
    def __init__(self, *, conn_limit: int = 10, workers: int = 1, access_log: bool = False) -> None:
        binary = nginx_path()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx-light or nginx)")
        self.binary = binary
        self.conn_limit = conn_limit
        self.workers = workers
        self.access_log = access_log  # one line per request in tmp/access.log, to count them
        self.tmp = Path(tempfile.mkdtemp(prefix="stressdeck-nginx-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        www = self.tmp / "www"
        (www / "slow").mkdir(parents=True)
        (www / "index.html").write_text("<h1>stressdeck</h1>\n")
        (www / "etag.json").write_text('{"object_types": ["Person", "Sensor"]}\n')
        (www / "slow" / "blob.bin").write_bytes(os.urandom(30_000))
        os.chmod(self.tmp, 0o755)  # workers may run as another user
        user = "user root root;\n" if os.geteuid() == 0 else ""
        for _attempt in range(3):
            self.port = _free_port()
            conf = self.tmp / "nginx.conf"
            log = f"{self.tmp}/access.log" if self.access_log else "off"
            conf.write_text(CONF.format(user=user, workers=self.workers, tmp=self.tmp, access_log=log,
                                        port=self.port, conn_limit=self.conn_limit))  # fmt: skip
            self.proc = _launch(self.binary, conf, self.tmp, self.port)
            if self.proc is not None:
                return self.url
        log = (self.tmp / "error.log").read_text() if (self.tmp / "error.log").exists() else ""
        raise RuntimeError(f"nginx did not start: {log[-500:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"  # Debian's libnginx-mod-stream

STREAM_CONF = """\
load_module {module};
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
stream {{ server {{ listen 127.0.0.1:{port} backlog=4096; proxy_pass 127.0.0.1:{upstream}; }} }}
"""


class NginxStreamProxy:
    """nginx's own TCP proxy (its stream module, one worker) in front of a loopback port: a
    proxy in C, the reference a network link's cost is read against on the same machine."""

    def __init__(self, upstream_port: int) -> None:
        binary = nginx_path()
        if binary is None or not os.path.exists(STREAM_MODULE):
            raise FileNotFoundError("needs nginx and its stream module (libnginx-mod-stream)")
        self.binary = binary
        self.upstream_port = upstream_port
        self.tmp = Path(tempfile.mkdtemp(prefix="stressdeck-nginx-stream-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NginxStreamProxy:
        self.port = _free_port()
        conf = self.tmp / "nginx.conf"
        conf.write_text(STREAM_CONF.format(module=STREAM_MODULE, tmp=self.tmp, port=self.port,
                                           upstream=self.upstream_port))  # fmt: skip
        self.proc = _launch(self.binary, conf, self.tmp, self.port)
        if self.proc is None:
            self.__exit__()
            raise RuntimeError("nginx's stream proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc)
        shutil.rmtree(self.tmp, ignore_errors=True)
