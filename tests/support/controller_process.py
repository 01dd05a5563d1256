"""``anycastlb controller`` as a real child process, pointed at a kubeconfig and a control plane."""

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import httpx

from anycastlb.lab.ports import free_port


class ControllerProcess:
    def __init__(
        self,
        workdir: Path,
        *,
        control_url: str,
        token: str,
        kubeconfig: Path,
        cluster: str = "test",
        extra: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.control_url = control_url
        self.token = token
        self.kubeconfig = kubeconfig
        self.cluster = cluster
        self.extra = extra
        self.metrics_port = free_port()
        self.log_path = workdir / f"controller-{self.metrics_port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self) -> "ControllerProcess":
        env = dict(os.environ, ANYCASTLB_TOKEN=self.token)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anycastlb.cli",
                "controller",
                "--control",
                self.control_url,
                "--cluster",
                self.cluster,
                "--kubeconfig",
                str(self.kubeconfig),
                "--metrics-port",
                str(self.metrics_port),
                "--leader-election-namespace",
                "kube-system",
                *self.extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"controller exited:\n{self.log()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"controller did not answer /healthz:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ControllerProcess":
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
