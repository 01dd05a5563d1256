"""Run ``anycastlb edge`` as a real child process with a generated config, as an operator would."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from anycastlb.lab.ports import free_port, wait_for_port

_REPO = Path(__file__).resolve().parents[2]
# An edge starts in well under a second on a quiet machine; on a shared 2-core one running the whole
# suite, forking the workers and the health process has taken over 10 s. A crash still fails at
# once (the waits watch the process).
START_TIMEOUT = 30.0


class EdgeProcess:
    """An edge agent started from a config dict; ``port_of(name)`` gives a listener's port.

    ``preload``: Python run before the CLI (e.g. a fault from ``tests.support.faults``)."""

    def __init__(self, workdir: Path, config: dict[str, Any], preload: str | None = None) -> None:
        self.workdir = workdir
        self.preload = preload
        self.config_path = workdir / "edge.yaml"
        self.log_path = workdir / "edge.log"
        config.setdefault("pop", "test")
        config.setdefault("workers", 2)
        config.setdefault("metrics", {"address": "127.0.0.1", "port": free_port()})
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, config: dict[str, Any] | None = None) -> None:
        if config is not None:
            self.config = config
        self.config_path.write_text(yaml.safe_dump(self.config))

    @property
    def metrics_url(self) -> str:
        metrics = self.config["metrics"]
        return f"http://{metrics['address']}:{metrics['port']}/metrics"

    def start(self) -> "EdgeProcess":
        self.write_config()
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        command = [sys.executable, "-m", "anycastlb.cli"]
        if self.preload is not None:
            command = [sys.executable, "-c", f"{self.preload}\nfrom anycastlb.cli import main\nmain()"]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*command, "edge", "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for listener in self.config.get("listeners", []):
            try:
                wait_for_port(
                    str(listener["address"]), int(listener["port"]), START_TIMEOUT, alive=self.process
                )
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"edge did not start:\n{self.log()}") from None
        # logged once every worker has opened its listeners
        self.wait_for_log("edge_started", timeout=START_TIMEOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 10.0, count: int = 1) -> None:
        """Readiness on a log event (e.g. ``config_applied``), seen at least ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not logged {count}x within {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # noqa: S310 - loopback only
            body: bytes = response.read()
        return body.decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{key}="{value}"' in line for key, value in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._log.close()

    def __enter__(self) -> "EdgeProcess":
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
