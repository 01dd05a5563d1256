"""The OCI image, built by deploy/image/build, runs its commands as the Helm charts run them.

The image is built once for the module (with the default cache of Debian roots, so a machine that
built it before takes about two minutes; a cold cache about six), unpacked with ``umoci unpack``,
and its entrypoint run in a chroot as the image's user, on a read-only root with a tmpfs at /tmp:
no container runtime, as none runs on these machines. tests/unit/test_image_spec.py checks the
config against the charts without building.
"""

import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from anycastlb import __version__
from anycastlb.lab.ports import free_port
from image_build import spec
from image_build.__main__ import DEFAULT_CACHE, BuildOptions, BuiltImage, build, project_version
from tests.support.oci_bundle import BundleProcess

# One worker builds the image and runs these one after another (pytest-xdist group "image").
# The build is in the first test's set-up: about 2 minutes with a warm cache, 6 or more cold on a
# loaded machine, hence a longer timeout than the suite's 300 s.
pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.xdist_group("image"),
    pytest.mark.timeout(1200),
]

_TOOLS = ("mmdebstrap", "umoci", "skopeo", "unshare", "chroot")
_missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
if os.geteuid() != 0:
    pytest.skip("building and unpacking the image needs root", allow_module_level=True)
if _missing:
    pytest.skip(
        f"needs {', '.join(_missing)}: apt-get install mmdebstrap umoci skopeo", allow_module_level=True
    )

REPOSITORY = Path(__file__).resolve().parents[2]
VERSION = project_version(REPOSITORY)


@pytest.fixture(scope="module")
def image() -> Iterator[BuiltImage]:
    out = Path(tempfile.mkdtemp(prefix="anycastlb-image-test-", dir="/var/tmp"))
    try:
        yield build(BuildOptions(out=out, cache_dir=DEFAULT_CACHE))
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def bundle(image: BuiltImage) -> Iterator[BundleProcess]:
    where = Path(tempfile.mkdtemp(prefix="anycastlb-bundle-", dir="/var/tmp"))
    try:
        subprocess.run(
            ["umoci", "unpack", "--image", f"{image.layout}:{image.tag}", str(where / "bundle")],
            check=True,
            capture_output=True,
        )
        yield BundleProcess.load(where / "bundle")
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _run(bundle: BundleProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bundle.command(args), capture_output=True, text=True, timeout=120, check=False)


def test_the_image_is_tagged_with_the_project_version(image: BuiltImage) -> None:
    assert image.tag == VERSION == __version__
    index = json.loads((image.layout / "index.json").read_text())
    names = [entry["annotations"]["org.opencontainers.image.ref.name"] for entry in index["manifests"]]
    assert names == [VERSION]


def test_the_docker_archive_loads_as_the_name_the_charts_pull(image: BuiltImage) -> None:
    with tarfile.open(image.archive) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        manifest = json.load(member)
    # skopeo writes the name fully qualified; docker shows it as anycastlb/anycastlb:VERSION, and
    # Kubernetes' runtimes expand the charts' "anycastlb/anycastlb:VERSION" to the same name.
    assert [entry["RepoTags"] for entry in manifest] == [[f"docker.io/anycastlb/anycastlb:{VERSION}"]]


def test_the_entrypoint_prints_the_version_as_the_non_root_user(bundle: BundleProcess) -> None:
    assert (bundle.uid, bundle.gid) == (spec.UID, spec.GID)
    assert bundle.entrypoint == f"{spec.VENV}/bin/anycastlb"
    done = _run(bundle, "version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"anycastlb {VERSION}"  # as `anycastlb --version` prints it
    assert done.stderr == ""  # no warning about an unwritable .pyc or home


def test_the_edge_validates_a_config_on_the_read_only_root(bundle: BundleProcess, tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        "pop: fra\nlisteners:\n  - name: web\n    address: 203.0.113.10\n    port: 8443\n"
        "    backends:\n      - address: 10.0.0.11\n        port: 30443\n"
    )
    config.chmod(0o644)
    done = subprocess.run(
        bundle.command(["edge", "--check", "--config", "/etc/anycastlb/edge.yaml"], binds=_etc(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ok (1 listeners)" in done.stdout


def _etc(directory: Path) -> dict[str, str]:
    """``directory`` at /etc/anycastlb, readable by the image's user (a ConfigMap's place)."""
    directory.chmod(0o755)
    return {str(directory): "/etc/anycastlb"}


def test_the_image_has_bird_for_bfd_and_no_compiler_or_pip(bundle: BundleProcess) -> None:
    root = bundle.rootfs
    assert (root / "usr/sbin/bird").exists(), "bgp/bfd_sidecar.py runs /usr/sbin/bird for bfd: true peers"
    assert not (root / "usr/bin/gcc").exists()
    assert not list((root / spec.VENV.lstrip("/")).glob("lib/python3*/site-packages/pip"))
    assert not list((root / spec.VENV.lstrip("/")).glob("bin/pip*"))


def test_the_control_plane_answers_healthz_on_a_read_only_root(bundle: BundleProcess) -> None:
    state = Path(tempfile.mkdtemp(prefix="anycastlb-image-state-", dir="/var/tmp"))
    os.chown(state, spec.UID, spec.GID)
    port = free_port()
    args = [
        "control",
        "--listen",
        f"127.0.0.1:{port}",
        "--database",
        "sqlite:////var/lib/anycastlb/control.db",
    ]
    token = {"ANYCASTLB_ADMIN_TOKEN": "image-test-" + "0" * 32}  # as the chart's Secret sets it
    command = bundle.command(args, env=token, binds={str(state): spec.STATE_DIR})
    log = state / "control.log"
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        status = _wait_for_healthz(f"http://127.0.0.1:{port}/healthz", server, log)
        assert status == 200
        assert (state / "control.db").exists()
    finally:
        _stop(server)
        shutil.rmtree(state, ignore_errors=True)


def _wait_for_healthz(url: str, server: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"anycastlb control exited with {server.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"anycastlb control did not answer {url} within 60 s:\n{log.read_text()}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group (unshare, the chrooted server), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        return
