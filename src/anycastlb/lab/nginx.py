"""A real nginx (Debian nginx-light) standing in for ingress-nginx: it accepts the PROXY protocol.

It answers every request with its node name and the client address it saw after
``real_ip_header proxy_protocol``, and logs ``$remote_addr`` so tests can read what it believed.
It runs with ``master_process off`` so that signalling the pid really signals the server.
"""

import os
import shutil
import signal
import subprocess
import textwrap
from pathlib import Path
from types import TracebackType

from anycastlb.lab.ports import free_port, wait_for_port


class NginxBackend:
    """One nginx process on 127.0.0.1 and [::1] at the same port (or on another loopback address)."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        *,
        proxy_protocol: bool = True,
        port: int | None = None,
        address: str = "127.0.0.1",
        fastopen: int | None = None,
    ) -> None:
        self.name = name
        self.address = address
        self.port = port or free_port()
        self.dir = workdir / f"nginx-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.access_log = self.dir / "access.log"
        self.proxy_protocol = proxy_protocol
        # TCP Fast Open on the listening sockets (nginx's ``fastopen=N``: at most N pending
        # SYN-data connections); None = off. The kernel must enable the server side too
        # (net.ipv4.tcp_fastopen & 2).
        self.fastopen = fastopen
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        pp = " proxy_protocol" if self.proxy_protocol else ""
        if self.fastopen is not None:
            pp += f" fastopen={self.fastopen}"
        real_ip = (
            "set_real_ip_from 127.0.0.0/8; set_real_ip_from ::1/128; real_ip_header proxy_protocol;"
            if self.proxy_protocol
            else ""
        )
        d = self.dir
        return textwrap.dedent(f"""
            daemon off; master_process off; worker_processes 1;
            pid {d}/nginx.pid; error_log {d}/error.log warn;
            events {{ worker_connections 4096; }}
            http {{
              log_format edge '$remote_addr $request_uri'; access_log {d}/access.log edge;
              client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
              uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
              keepalive_requests 100000; sendfile on; tcp_nopush on;
              {real_ip}
              server {{
                listen {self.address}:{self.port}{pp} reuseport backlog=4096;
                {f"listen [::1]:{self.port}{pp};" if self.address == "127.0.0.1" else ""}
                root {d}/www;
                location = / {{
                  default_type text/plain; return 200 "node={self.name} client=$remote_addr\\n";
                }}
                location /files/ {{ alias {d}/www/; }}
              }}
            }}
        """)

    @property
    def www(self) -> Path:
        path = self.dir / "www"
        path.mkdir(exist_ok=True)
        return path

    def start(self) -> "NginxBackend":
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        (self.dir / "nginx.conf").write_text(self.config())
        self.www  # noqa: B018 - create the document root
        self.process = subprocess.Popen(
            [nginx, "-c", str(self.dir / "nginx.conf"), "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.address, self.port, alive=self.process)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"nginx {self.name} did not start: {(self.dir / 'error.log').read_text()}"
            ) from None
        return self

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> "NginxBackend":
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
