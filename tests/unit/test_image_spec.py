"""The image's spec (deploy/image/image_build/spec.py) against the Helm charts, without building.

The charts pull anycastlb/anycastlb:<appVersion>, run ``anycastlb`` by name as uid/gid 65532 with a
read-only root and an emptyDir at /tmp: the image must be named, versioned and configured to match.
tests/e2e/test_image.py builds the image and runs it.
"""

import tomllib
from pathlib import Path

import pytest
import yaml

from anycastlb import __version__
from image_build import spec
from image_build.__main__ import project_dependencies, project_version
from image_build.venv import CONSTRAINTS, locked_versions

ROOT = Path(__file__).resolve().parents[2]
CHARTS = sorted((ROOT / "deploy" / "helm").iterdir())
CONFIG = spec.image_config("0.1.0", 1_700_000_000, "0123abc", "bookworm")


def _chart(path: Path, name: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((path / name).read_text())
    return loaded


def _env(name: str) -> str:
    return next(item.split("=", 1)[1] for item in CONFIG.env if item.startswith(f"{name}="))


@pytest.mark.parametrize("chart", CHARTS, ids=lambda path: path.name)
def test_each_chart_pulls_the_image_this_build_names(chart: Path) -> None:
    values = _chart(chart, "values.yaml")
    assert values["image"] == {"repository": spec.IMAGE_REPOSITORY, "tag": "", "pullPolicy": "IfNotPresent"}
    assert _chart(chart, "Chart.yaml")["appVersion"] == project_version(ROOT) == __version__


@pytest.mark.parametrize("chart", CHARTS, ids=lambda path: path.name)
def test_the_image_user_is_the_charts_run_as_user(chart: Path) -> None:
    pod = _chart(chart, "values.yaml")["podSecurityContext"]
    assert isinstance(pod, dict)
    assert (pod["runAsUser"], pod["runAsGroup"]) == (spec.UID, spec.GID)
    assert CONFIG.user == f"{spec.UID}:{spec.GID}"
    assert spec.UID != 0


def test_anycastlb_by_name_finds_the_venv_first_on_path() -> None:
    assert CONFIG.entrypoint == (f"{spec.VENV}/bin/anycastlb",)
    assert _env("PATH").split(":")[0] == f"{spec.VENV}/bin"


def test_nothing_at_run_time_writes_outside_tmp_and_the_state_volume() -> None:
    assert _env("PYTHONDONTWRITEBYTECODE") == "1"
    assert _env("TMPDIR") == "/tmp"
    assert set(CONFIG.volumes) == {"/tmp", spec.STATE_DIR}
    assert _env("HOME") == spec.HOME == CONFIG.workdir


def test_the_labels_carry_version_revision_and_the_epoch_as_date() -> None:
    labels = CONFIG.labels
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == "0123abc"
    assert labels["org.opencontainers.image.created"] == CONFIG.created == "2023-11-14T22:13:20Z"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_umoci_gets_every_field_after_clearing_what_it_would_append_to() -> None:
    args = spec.umoci_config_args(CONFIG)
    clears = [arg for arg in args if arg.startswith("--clear=")]
    assert args[: len(clears)] == clears
    assert f"--config.user={spec.UID}:{spec.GID}" in args
    assert f"--config.entrypoint={spec.VENV}/bin/anycastlb" in args
    assert sum(arg.startswith("--config.env=") for arg in args) == len(CONFIG.env)
    assert "--config.label=org.opencontainers.image.version=0.1.0" in args
    assert f"--created={CONFIG.created}" in args


def test_the_account_lines_are_fixed_text_with_the_charts_ids() -> None:
    account = spec.Account()
    fields = account.passwd.rstrip("\n").split(":")
    assert fields[:4] == [spec.USER, "x", str(spec.UID), str(spec.GID)]
    assert fields[5:] == [spec.HOME, "/usr/sbin/nologin"]
    assert account.shadow.split(":")[1] == "!"  # no password, and no date in it


def test_cache_keys_differ_by_any_input_and_repeat_for_the_same() -> None:
    key = spec.cache_key("runtime", "bookworm", ("deb a",), spec.RUNTIME_PACKAGES, 1)
    assert key == spec.cache_key("runtime", "bookworm", ("deb a",), spec.RUNTIME_PACKAGES, 1)
    assert key != spec.cache_key("runtime", "bookworm", ("deb b",), spec.RUNTIME_PACKAGES, 1)
    assert key != spec.cache_key("runtime", "bookworm", ("deb a",), ("python3",), 1)
    assert key.startswith("runtime-")
    assert key.endswith(".tar")


def test_no_compiler_in_the_image_packages() -> None:
    assert not set(spec.RUNTIME_PACKAGES) & {"gcc", "libc6-dev", "python3-dev", "python3-pip"}


def test_every_dependency_and_build_requirement_is_locked() -> None:
    pins = locked_versions(CONSTRAINTS.read_text())
    with (ROOT / "pyproject.toml").open("rb") as file:
        build_requires = tomllib.load(file)["build-system"]["requires"]
    for requirement in [*project_dependencies(ROOT), *build_requires]:
        name = requirement.split(";")[0].split("[")[0]
        for operator in "<>=!~ ":
            name = name.split(operator)[0]
        assert name.lower().replace("_", "-") in pins, f"{requirement}: run deploy/image/build --relock"
