"""Render a chart of this repository offline, as `helm template` does, for tests.

The engine: the helm-python-sdk package (Helm's own Go SDK as a shared library, a dev dependency),
else the ``helm`` binary on PATH. :func:`engine` answers None when there is neither, and the tests
skip saying so. Only the SDK renders NOTES.txt (``helm template`` does not print it).
"""

import importlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

__all__ = ["HelmEngine", "RenderError", "documents", "engine"]

Obj = dict[str, Any]


class RenderError(RuntimeError):
    """The chart refused to render (a `required` or `fail`, a values.schema.json violation)."""


def documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


class HelmEngine:
    """One chart, one release name and namespace."""

    def __init__(
        self, chart: Path, release: str, namespace: str, sdk: ModuleType | None, binary: str | None
    ) -> None:
        self.chart = chart
        self.release = release
        self.namespace = namespace
        self._sdk = sdk
        self._binary = binary

    @property
    def renders_notes(self) -> bool:
        return self._sdk is not None

    def files(self, values: Obj) -> dict[str, str]:
        """{template path: rendered text}, NOTES.txt included (SDK only)."""
        if self._sdk is None:
            raise RuntimeError("rendering single files needs helm-python-sdk")
        try:
            rendered: dict[str, str] = self._sdk.Chart.load(self.chart).render(
                values, name=self.release, namespace=self.namespace, is_install=True
            )
        except self._sdk.HelmError as error:
            raise RenderError(str(error)) from None
        return rendered

    def render(self, values: Obj) -> list[Obj]:
        """Every object the chart renders with ``values``, hooks included, ordered by template."""
        if self._sdk is not None:
            rendered = self.files(values)
            return [
                obj
                for path in sorted(rendered)
                if path.endswith((".yaml", ".yml"))
                for obj in documents(rendered[path])
            ]
        assert self._binary is not None
        with tempfile.TemporaryDirectory() as tmp:
            values_file = Path(tmp) / "values.json"
            values_file.write_text(json.dumps(values))
            command = [
                self._binary,
                "template",
                self.release,
                str(self.chart),
                "--namespace",
                self.namespace,
                "-f",
                str(values_file),
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RenderError(done.stderr)
        return documents(done.stdout)

    def lint(self, values: Obj) -> list[str]:
        """`helm lint --strict`: its warnings and errors (info, such as "icon is recommended", is dropped)."""
        if self._sdk is not None:
            report = self._sdk.lint(self.chart, values, strict=True, kube_version="v1.30.0")
            problems = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
            return problems + list(report["errors"])
        assert self._binary is not None
        with tempfile.TemporaryDirectory() as tmp:
            values_file = Path(tmp) / "values.json"
            values_file.write_text(json.dumps(values))
            command = [self._binary, "lint", "--strict", str(self.chart), "-f", str(values_file)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        return [] if done.returncode == 0 else [done.stdout + done.stderr]


def engine(chart: Path, release: str, namespace: str) -> HelmEngine | None:
    try:
        sdk: ModuleType | None = importlib.import_module("helm_python")
    except ImportError:
        sdk = None
    binary = shutil.which("helm")
    if sdk is None and binary is None:
        return None
    return HelmEngine(chart, release, namespace, sdk, binary)
