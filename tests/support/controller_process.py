"""``anycastlb controller`` as a real child process, pointed at a kubeconfig and a control plane."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import httpx

from anycastlb.lab.ports import free_port
from tests.support.processes import ChildProcess, exited, signal_group

PORT_TAKEN = "cannot serve /healthz, /readyz and /metrics on"  # the controller's start error
_PORT_ATTEMPTS = 5


class ControllerProcess(ChildProcess):
    """One controller in its own process group, logging to ``workdir/controller-PORT.log``.

    Cleanup is unconditional: :meth:`stop` (also when :meth:`start` fails) ends the whole group and
    closes the log, so a failed start leaves no controller running after the suite. The metrics
    port comes from :func:`free_port`; if another process binds it first, the controller exits
    saying so and the start is retried on a new port.
    """

    stop_group = True  # its own session: stop() ends anything it started, too

    def __init__(
        self,
        workdir: Path,
        *,
        control_url: str,
        token: str,
        kubeconfig: Path,
        cluster: str = "test",
        extra: tuple[str, ...] = (),
        metrics_port: int | None = None,
    ) -> None:
        super().__init__()
        self.workdir = workdir
        self.control_url = control_url
        self.token = token
        self.kubeconfig = kubeconfig
        self.cluster = cluster
        self.extra = extra
        self._fixed_port = metrics_port  # a test that wants the port taken passes it
        self.metrics_port = metrics_port if metrics_port is not None else free_port()

    @property
    def log_path(self) -> Path:
        return self.workdir / f"controller-{self.metrics_port}.log"

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (:meth:`start` waits for /healthz)."""
        self.stop()
        env = dict(os.environ, ANYCASTLB_TOKEN=self.token)
        log = self._open_log(self.log_path)
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
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stop() ends anything it started
        )
        return self.process

    def start(self) -> Self:
        try:
            self._start_on_a_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_on_a_free_port(self) -> None:
        for _ in range(_PORT_ATTEMPTS):
            if self._started():
                return
            if self._fixed_port is not None:
                break
            self.metrics_port = free_port()  # someone else bound it first: another port
        raise RuntimeError(f"controller could not bind its metrics port:\n{self.log()}")

    def _started(self) -> bool:
        """True once /healthz answers; False if the controller exited because its port was taken."""
        self.spawn()
        deadline = time.monotonic() + 20
        while True:
            if self.exited():
                if PORT_TAKEN in self.log():
                    return False
                raise RuntimeError(f"controller exited:\n{self.log()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"controller did not answer /healthz:\n{self.log()}")
            time.sleep(0.05)

    def exited(self) -> bool:
        """Whether the process has exited, without reaping it (see :func:`processes.exited`)."""
        assert self.process is not None
        return exited(self.process)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit on its own; its exit code (the group is ended, too)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() > deadline:
                raise TimeoutError(f"controller still running after {timeout} s:\n{self.log()}")
            time.sleep(0.02)
        self._signal_group(signal.SIGKILL)
        return self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text

    def readyz(self) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=2)

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self.process is not None
        signal_group(self.process, signum)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no Lease release."""
        if self.process is not None:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
