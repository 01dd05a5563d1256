"""Debian's Prometheus for tests: ``promtool`` for the alert rules, and a real server scraping the
edge and the control plane for the dashboards (tests/integration/test_dashboards.py).

Without the binaries the tests skip and name the package; under CI (``CI=true``) they fail instead,
since CI installs it (scripts/setup's apt list must carry ``prometheus``).
"""

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Self

import pytest
import yaml

from anycastlb.lab.ports import free_port
from tests.support.processes import ChildProcess

__all__ = ["PrometheusServer", "require_binary"]


def require_binary(name: str) -> str:
    """The path of ``name`` (promtool, prometheus); skip without it, or fail under CI."""
    found = shutil.which(name)
    if found is not None:
        return found
    message = f"{name} is not installed: apt-get install prometheus (Debian's package ships {name})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


class PrometheusServer(ChildProcess):
    """``prometheus`` on a free loopback port with a temporary config and storage, stopped (and its
    directory left to pytest's tmp_path) on exit, even when the test fails."""

    def __init__(
        self,
        workdir: Path,
        scrape_configs: list[dict[str, Any]],
        interval: str = "1s",
        rule_files: tuple[Path, ...] = (),
    ) -> None:
        super().__init__()
        self.binary = require_binary("prometheus")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": scrape_configs,
            "rule_files": [str(path) for path in rule_files],
        }
        self.log_path = workdir / "prometheus.log"

    def start(self) -> Self:
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):  # noqa: S310 - loopback
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus not ready in 20 s:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def targets(self) -> dict[str, dict[str, Any]]:
        """Each active target by its scrape URL: health (up, down, unknown), lastError, labels."""
        return {target["scrapeUrl"]: target for target in self.api("targets")["activeTargets"]}

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health (ok, err, unknown), lastError and alerts."""
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]
