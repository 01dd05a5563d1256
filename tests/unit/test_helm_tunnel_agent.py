"""The controller chart's tunnel agent DaemonSet (with tunnels.enabled), rendered offline and
validated against the Kubernetes schemas: what the node side of the tunnels needs, and nothing more."""

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer
import yaml

from anycastlb.cli import app
from tests.support.helm import HelmEngine, engine

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "anycastlb-controller"
REQUIRED = yaml.safe_load((ROOT / "deploy" / "manifests" / "values.yaml").read_text())


@pytest.fixture(scope="module")
def helm() -> HelmEngine:
    found = engine(CHART, "anycastlb-controller", "anycastlb-system")
    if found is None:
        pytest.skip(
            "no Helm engine: `helm` is not on PATH and helm_python (PyPI helm-python-sdk) is not installed"
        )
    return found


def _daemonsets(helm: HelmEngine, enabled: bool = False, **agent: Any) -> list[Obj]:
    objects = helm.render({**REQUIRED, "tunnels": {"enabled": enabled, "agent": agent}})
    return [obj for obj in objects if obj["kind"] == "DaemonSet"]


@pytest.fixture(scope="module")
def daemonset(helm: HelmEngine) -> Obj:
    (found,) = _daemonsets(helm, enabled=True)
    return found


def test_there_is_no_tunnel_agent_unless_enabled(helm: HelmEngine) -> None:
    assert _daemonsets(helm) == []


def test_the_daemonset_is_a_valid_kubernetes_object(daemonset: Obj) -> None:
    kubernetes_validate.validate(daemonset, kubernetes_validate.latest_version(), strict=True)


def test_it_runs_on_the_host_network_with_net_admin_only_and_no_api_access(daemonset: Obj) -> None:
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostNetwork"] is True
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "privileged" not in container["securityContext"]
    tun = next(volume for volume in pod["volumes"] if volume["name"] == "tun")
    assert tun["hostPath"] == {"path": "/dev/net/tun", "type": "CharDevice"}
    assert pod["tolerations"] == [{"operator": "Exists"}]  # every node, tainted ones too


def test_it_mounts_the_secret_the_controller_writes_at_the_config_dir(
    daemonset: Obj, helm: HelmEngine
) -> None:
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = next(volume for volume in pod["volumes"] if volume["name"] == "config")
    assert config["secret"]["secretName"] == "anycastlb-tunnel"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    args = container["args"]
    assert args[args.index("--config-dir") + 1] == mount["mountPath"]
    (moved,) = _daemonsets(helm, enabled=True, metricsPort=9555, nodeSelector={"pool": "edge"})
    assert moved["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "edge"}
    assert moved["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 9555


def test_every_flag_it_passes_is_one_the_tunnel_agent_command_has(daemonset: Obj) -> None:
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["anycastlb"]
    command = typer.main.get_command(app).commands[container["args"][0]]  # type: ignore[attr-defined]
    known = {option for param in command.params for option in param.opts}
    flags = [arg for arg in container["args"][1:] if arg.startswith("--")]
    assert flags and set(flags) <= known


def test_its_pods_are_not_selected_by_the_controllers_deployment(helm: HelmEngine, daemonset: Obj) -> None:
    objects = helm.render({**REQUIRED, "tunnels": {"enabled": True}})
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    for obj in objects:
        selector = obj.get("spec", {}).get("selector")
        if obj["kind"] == "DaemonSet" or not isinstance(selector, dict):
            continue
        wanted = selector.get("matchLabels", selector)  # a Service's selector is the labels
        assert not all(labels.get(key) == value for key, value in wanted.items()), obj["kind"]
