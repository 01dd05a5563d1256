"""Run ``anycastlb edge --control URL --pop P`` as a real child process, as an operator would."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from anycastlb.lab.ports import free_port
from tests.support.edge import START_TIMEOUT, EdgeProcess


class ControlledEdge(EdgeProcess):
    """An edge that follows a control plane; ``base`` is its base.yaml (no listeners)."""

    def __init__(self, workdir: Path, url: str, token: str, base: dict[str, Any] | None = None) -> None:
        base = dict(base or {})
        base.setdefault("pop", "fra")
        base.setdefault("workers", 2)
        base.setdefault("metrics", {"address": "127.0.0.1", "port": free_port()})
        super().__init__(workdir, base)
        self.config_path = workdir / "base.yaml"
        self.state_dir = workdir / "state"
        self.url = url
        self.token = token

    def start(self) -> "ControlledEdge":
        self.config_path.write_text(yaml.safe_dump(self.config))
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env["ANYCASTLB_POP_TOKEN"] = self.token
        self._log = self.log_path.open("ab")
        started = self.log().count("edge_started")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anycastlb.cli",
                "edge",
                "--control",
                self.url,
                "--pop",
                str(self.config["pop"]),
                "--config",
                str(self.config_path),
                "--state-dir",
                str(self.state_dir),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.wait_for_log("edge_started", timeout=START_TIMEOUT, count=started + 1)
        return self

    def __enter__(self) -> "ControlledEdge":
        return self.start()
