"""The controller's Helm chart, the plain manifests rendered from it, and the deploy examples,
checked offline.

Every object is validated against the Kubernetes API schemas (kubernetes-validate, strict: an
unknown field fails), and the things that matter are asserted: RBAC least privilege, the
controller's command line, environment and security context, probes, labels.

The plain manifests (deploy/manifests/) are checked on every run. Rendering the chart itself needs
a Helm engine: the ``helm`` binary on PATH, or the helm-python-sdk package (Helm's own Go SDK as a
shared library). Without either, the rendering tests skip and say so; with one, they also prove
the plain manifests are exactly what the chart renders (``UPDATE_GOLDEN=1`` rewrites them).
"""

import importlib
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer
import yaml

from anycastlb.cli import app

Obj = dict[str, Any]
Render = Callable[[Obj], list[Obj]]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "anycastlb-controller"
MANIFESTS = ROOT / "deploy" / "manifests" / "anycastlb-controller.yaml"
MANIFEST_VALUES = ROOT / "deploy" / "manifests" / "values.yaml"
EXAMPLES = ROOT / "deploy" / "examples"
DOCS = ROOT / "docs" / "kubernetes.md"
RELEASE = "anycastlb-controller"
NAMESPACE = "anycastlb-system"
OUR_CLASS = "anycastlb.io/anycast"
# The oldest schema kubernetes-validate ships, the version the issue names, and the newest.
KUBE_VERSIONS = ("1.25", "1.30", kubernetes_validate.latest_version())
# Helm's install order (pkg/release/util/kind_sorter.go), for writing the plain manifests.
INSTALL_ORDER = (
    "Namespace",
    "PodDisruptionBudget",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
)
HELM_VALUES_EXAMPLES = {"ingress-nginx-values.yaml", "traefik-values.yaml"}
FORBIDDEN_RESOURCES = {"secrets", "configmaps", "pods/exec", "serviceaccounts/token"}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "delete", "deletecollection"}


class RenderError(RuntimeError):
    """The chart refused to render (a missing required value, a schema violation)."""


def _documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def _one(objects: list[Obj], kind: str) -> Obj:
    found = _by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _container(objects: list[Obj]) -> Obj:
    containers = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["controller"]
    container: Obj = containers[0]
    return container


def _flags(container: Obj) -> dict[str, str | None]:
    """``--name value`` pairs of the controller's arguments; a flag without a value maps to None."""
    args: list[str] = container["args"]
    assert container["command"] == ["anycastlb"]
    assert args[0] == "controller"
    flags: dict[str, str | None] = {}
    rest = args[1:]
    while rest:
        flag, rest = rest[0], rest[1:]
        assert flag.startswith("--"), f"argument {flag!r} is not a flag"
        assert flag not in flags, f"{flag} given twice"
        if rest and not rest[0].startswith("--"):
            flags[flag], rest = rest[0], rest[1:]
        else:
            flags[flag] = None
    return flags


def _validate(obj: Obj, version: str, where: str) -> None:
    try:
        kubernetes_validate.validate(obj, desired_version=version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(part) for part in error.path)
        pytest.fail(f"{where}: {obj['kind']}/{obj['metadata']['name']} at {path}: {error.message}")


def _rules(role: Obj) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) for every grant of a Role or ClusterRole."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def _values(path: Path) -> Obj:
    values: Obj = yaml.safe_load(path.read_text())
    return values


def _merged(base: Obj, override: Obj) -> Obj:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- Helm engines ----------------------------------------------------------------------------


def _install_rank(kind: str) -> int:
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


def _render_with_binary(helm: str, values: Obj, tmp: Path) -> str:
    values_file = tmp / "values.json"
    values_file.write_text(json.dumps(values))
    command = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(values_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RenderError(done.stderr)
    return done.stdout


def _render_with_sdk(sdk: Any, values: Obj) -> str:
    """The SDK answers {template path: text}; joined in Helm's install order as `helm template` does."""
    try:
        rendered: dict[str, str] = sdk.Chart.load(CHART).render(
            values, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    except sdk.HelmError as error:
        raise RenderError(str(error)) from None
    parts = [
        (path, text)
        for path, text in rendered.items()
        if path.endswith((".yaml", ".yml")) and _documents(text)
    ]
    parts.sort(key=lambda part: (_install_rank(_documents(part[1])[0]["kind"]), part[0]))
    return "".join(f"---\n# Source: {path}\n{text.strip()}\n" for path, text in parts)


@pytest.fixture(scope="module")
def render_text(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Obj], str]:
    helm = shutil.which("helm")
    if helm is not None:
        tmp = tmp_path_factory.mktemp("helm")
        return lambda values: _render_with_binary(helm, values, tmp)
    try:
        sdk = importlib.import_module("helm_python")
    except ImportError:
        pytest.skip(
            "no Helm engine: `helm` is not on PATH and helm_python (PyPI helm-python-sdk) is not "
            "installed; the plain manifests in deploy/manifests are still checked"
        )
    return lambda values: _render_with_sdk(sdk, values)


@pytest.fixture(scope="module")
def lint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Obj], list[str]]:
    """`helm lint --strict`: its warnings and errors (info, such as "icon is recommended", is dropped)."""
    helm = shutil.which("helm")
    if helm is not None:
        values_file = tmp_path_factory.mktemp("lint") / "values.json"

        def with_binary(values: Obj) -> list[str]:
            values_file.write_text(json.dumps(values))
            command = [helm, "lint", "--strict", str(CHART), "-f", str(values_file)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            return [] if done.returncode == 0 else [done.stdout + done.stderr]

        return with_binary
    try:
        sdk = importlib.import_module("helm_python")
    except ImportError:
        pytest.skip(
            "no Helm engine: `helm` is not on PATH and helm_python (PyPI helm-python-sdk) is not installed"
        )

    def with_sdk(values: Obj) -> list[str]:
        report = sdk.lint(CHART, values, strict=True, kube_version="v1.30.0")
        problems = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
        return problems + list(report["errors"])

    return with_sdk


@pytest.fixture(scope="module")
def render(render_text: Callable[[Obj], str]) -> Render:
    return lambda values: _documents(render_text(values))


@pytest.fixture(scope="module")
def required() -> Obj:
    return _values(MANIFEST_VALUES)


# --- the plain manifests: checked on every run -------------------------------------------------


@pytest.fixture(scope="module")
def plain() -> list[Obj]:
    return _documents(MANIFESTS.read_text())


@pytest.fixture(scope="module")
def defaults() -> Obj:
    return _values(CHART / "values.yaml")


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_plain_manifest_is_a_valid_kubernetes_object(plain: list[Obj], version: str) -> None:
    for obj in plain:
        _validate(obj, version, MANIFESTS.name)


def test_plain_manifests_hold_the_controller_and_its_permissions(plain: list[Obj]) -> None:
    assert sorted(obj["kind"] for obj in plain) == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
        ]
    )
    assert len({_key(obj) for obj in plain}) == len(plain), "an object is listed twice"
    for obj in plain:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE, _key(obj)
        else:
            assert "namespace" not in obj["metadata"], _key(obj)


def test_every_object_carries_the_recommended_labels(plain: list[Obj]) -> None:
    for obj in plain:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "anycastlb-controller", _key(obj)
        assert labels["app.kubernetes.io/instance"] == RELEASE, _key(obj)
        assert labels["app.kubernetes.io/managed-by"] == "Helm", _key(obj)
        assert labels["app.kubernetes.io/part-of"] == "anycastlb", _key(obj)
        assert labels["app.kubernetes.io/version"], _key(obj)


def test_cluster_role_grants_exactly_what_the_controller_uses(plain: list[Obj]) -> None:
    assert _rules(_one(plain, "ClusterRole")) == {
        *(("", "services", verb) for verb in ("get", "list", "watch", "update", "patch")),
        ("", "services/status", "update"),
        ("", "services/status", "patch"),
        *(("", "nodes", verb) for verb in ("get", "list", "watch")),
        *(("discovery.k8s.io", "endpointslices", verb) for verb in ("get", "list", "watch")),
        ("", "events", "create"),
        ("", "events", "patch"),
        ("events.k8s.io", "events", "create"),
        ("events.k8s.io", "events", "patch"),
    }


def _assert_least_privilege(objects: list[Obj]) -> None:
    for role in _by_kind(objects, "ClusterRole") + _by_kind(objects, "Role"):
        where = _key(role)
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, where
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{where}: {field} has a wildcard"
        grants = _rules(role)
        assert not {resource for _, resource, _ in grants} & FORBIDDEN_RESOURCES, where
        assert not {verb for _, _, verb in grants} & FORBIDDEN_VERBS, where
        creates = {resource for _, resource, verb in grants if verb == "create"}
        allowed = {"events", "leases"} if role["kind"] == "Role" else {"events"}
        assert creates <= allowed, f"{where} may create {creates - allowed}"


def test_rbac_has_no_wildcards_no_secrets_and_creates_only_events_and_its_lease(plain: list[Obj]) -> None:
    _assert_least_privilege(plain)


def test_leases_are_granted_only_in_the_release_namespace(plain: list[Obj]) -> None:
    assert not any(group == "coordination.k8s.io" for group, _, _ in _rules(_one(plain, "ClusterRole")))
    role = _one(plain, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert _rules(role) == {("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")}


def test_bindings_give_the_roles_to_the_controllers_service_account(plain: list[Obj]) -> None:
    account = _one(plain, "ServiceAccount")["metadata"]["name"]
    pod = _one(plain, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account
    assert _one(plain, "ServiceAccount").get("automountServiceAccountToken", True) is True
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = _one(plain, binding_kind)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": _one(plain, role_kind)["metadata"]["name"],
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]


def test_controller_command_line_and_environment(plain: list[Obj], required: Obj) -> None:
    container = _container(plain)
    assert _flags(container) == {
        "--control": "$(ANYCASTLB_CONTROL_URL)",
        "--cluster": required["cluster"],
        "--node-address-types": "ExternalIP,InternalIP",
        "--leader-election-namespace": NAMESPACE,
        "--metrics-port": "9101",
        "--log-level": "info",
    }
    env = {item["name"]: item for item in container["env"]}
    assert set(env) == {"ANYCASTLB_CONTROL_URL", "ANYCASTLB_TOKEN"}
    assert env["ANYCASTLB_CONTROL_URL"]["value"] == required["control"]["url"]
    assert env["ANYCASTLB_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": required["tokenSecret"]["name"], "key": required["tokenSecret"]["key"]}
    }


def _controller_options() -> set[str]:
    group = typer.main.get_command(app)
    command = group.commands["controller"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in param.opts}


def test_every_flag_is_an_option_of_anycastlb_controller(plain: list[Obj]) -> None:
    unknown = set(_flags(_container(plain))) - _controller_options()
    assert not unknown, f"`anycastlb controller` has no option {sorted(unknown)}"


def test_controller_runs_unprivileged(plain: list[Obj]) -> None:
    pod = _one(plain, "Deployment")["spec"]["template"]["spec"]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field), field
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = _container(plain)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not context.get("privileged")


def test_liveness_asks_healthz_and_readiness_readyz_on_the_metrics_port(plain: list[Obj]) -> None:
    container = _container(plain)
    assert container["ports"] == [{"name": "metrics", "containerPort": 9101, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    service = _one(plain, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    metrics = {"name": "metrics", "port": 9101, "targetPort": "metrics", "protocol": "TCP"}
    assert service["spec"]["ports"] == [metrics]


def test_selectors_match_the_pods(plain: list[Obj]) -> None:
    deployment = _one(plain, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        _one(plain, "Service")["spec"]["selector"],
        _one(plain, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector, "an empty selector matches every pod"
        assert selector.items() <= pod_labels.items()
    assert "app.kubernetes.io/version" not in selectors[0], "the selector must survive upgrades"


def test_plain_manifests_follow_the_chart_defaults(plain: list[Obj], defaults: Obj) -> None:
    deployment = _one(plain, "Deployment")
    assert deployment["spec"]["replicas"] == defaults["replicaCount"] == 2
    assert _one(plain, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    container = _container(plain)
    assert container["resources"] == defaults["resources"]
    assert container["securityContext"] == defaults["securityContext"]
    assert deployment["spec"]["template"]["spec"]["securityContext"] == defaults["podSecurityContext"]
    assert defaults["loadBalancerClass"] == OUR_CLASS
    assert defaults["defaultClass"] is False
    assert defaults["nodeAddressTypes"] == ["ExternalIP", "InternalIP"]
    assert defaults["metrics"]["port"] == 9101


# --- the chart itself: needs a Helm engine ------------------------------------------------------


def test_chart_renders_exactly_the_plain_manifests(render_text: Callable[[Obj], str], required: Obj) -> None:
    text = render_text(required)
    if os.environ.get("UPDATE_GOLDEN"):
        header = (
            "# The anycastlb controller as plain manifests: deploy/helm/anycastlb-controller rendered with\n"
            "# deploy/manifests/values.yaml (release anycastlb-controller, namespace anycastlb-system).\n"
            "# Edit the control URL, the cluster name and the token Secret's name, create the namespace\n"
            "# and the Secret (docs/kubernetes.md), then `kubectl apply -f` this file.\n"
            "# Generated: UPDATE_GOLDEN=1 python -m pytest tests/unit/test_helm_chart.py\n"
        )
        MANIFESTS.write_text(header + text)
    rendered = {_key(obj): obj for obj in _documents(text)}
    written = {_key(obj): obj for obj in _documents(MANIFESTS.read_text())}
    assert sorted(rendered) == sorted(written), "run with UPDATE_GOLDEN=1 after checking the diff"
    for key, obj in rendered.items():
        assert written[key] == obj, f"{key} differs from the chart: run with UPDATE_GOLDEN=1"


def test_chart_passes_helm_lint_strict(lint: Callable[[Obj], list[str]], required: Obj) -> None:
    assert lint(required) == []


AMD64_ONLY = {
    "nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
    ]
}
OPTION_SETS: dict[str, Obj] = {
    "everything on": {
        "defaultClass": True,
        "pops": ["fra", "ams"],
        "logLevel": "debug",
        "replicaCount": 3,
        "imagePullSecrets": [{"name": "registry"}],
        "priorityClassName": "system-cluster-critical",
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "podLabels": {"team": "network"},
        "serviceAccount": {"annotations": {"example.com/role": "lb"}},
        "metrics": {"port": 9200, "service": {"annotations": {"prometheus.io/port": "9200"}}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": AMD64_ONLY}},
    },
    "everything off": {
        "replicaCount": 1,
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "anycastlb"},
        "metrics": {"service": {"enabled": False}},
        "podDisruptionBudget": {"enabled": False},
    },
}


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_chart_renders_valid_objects_with_every_option(render: Render, required: Obj, name: str) -> None:
    objects = render(_merged(required, OPTION_SETS[name]))
    for obj in objects:
        _validate(obj, "1.30", f"chart with {name}")
    _assert_least_privilege(objects)
    kinds = sorted(obj["kind"] for obj in objects)
    if name == "everything off":
        assert kinds == ["Deployment"]
        assert objects[0]["spec"]["template"]["spec"]["serviceAccountName"] == "anycastlb"
    else:
        assert len(kinds) == 8


def test_default_class_pops_and_metrics_port_reach_the_command_line(render: Render, required: Obj) -> None:
    objects = render(_merged(required, OPTION_SETS["everything on"]))
    container = _container(objects)
    flags = _flags(container)
    assert flags["--default-class"] is None
    assert flags["--pops"] == "fra,ams"
    assert flags["--metrics-port"] == "9200"
    assert container["ports"][0]["containerPort"] == 9200
    assert _one(objects, "Deployment")["spec"]["replicas"] == 3
    unknown = set(flags) - _controller_options()
    assert not unknown, f"`anycastlb controller` has no option {sorted(unknown)}"


def test_a_class_other_than_ours_is_passed_as_a_flag(render: Render, required: Obj) -> None:
    flags = _flags(_container(render({**required, "loadBalancerClass": "example.com/edge"})))
    assert flags["--load-balancer-class"] == "example.com/edge"


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ({"cluster": ""}, "cluster: name this cluster"),
        ({"control": {"url": ""}}, "control.url: the control plane's URL"),
        ({"tokenSecret": {"name": ""}}, "tokenSecret.name: an existing Secret"),
    ],
)
def test_missing_required_values_are_refused_with_what_to_set(
    render: Render, required: Obj, missing: Obj, message: str
) -> None:
    with pytest.raises(RenderError, match=message):
        render(_merged(required, missing))


@pytest.mark.parametrize(
    ("typo", "field"),
    [
        ({"logLevel": "verbose"}, "logLevel"),
        ({"nodeAddressTypes": ["Hostname"]}, "nodeAddressTypes"),
        ({"cluster": "Prod_1"}, "cluster"),
        ({"control": {"url": "control.example.net"}}, "url"),
        ({"defaultClass": "yes"}, "defaultClass"),
    ],
)
def test_values_schema_rejects_a_typo(render: Render, required: Obj, typo: Obj, field: str) -> None:
    with pytest.raises(RenderError, match=field):
        render(_merged(required, typo))


# --- the examples --------------------------------------------------------------------------------


def _example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def _kube_objects(path: Path) -> Iterator[Obj]:
    for doc in _documents(path.read_text()):
        if "apiVersion" in doc and "kind" in doc:
            yield doc


@pytest.mark.parametrize("path", _example_files(), ids=lambda path: path.name)
def test_every_example_object_is_valid(path: Path) -> None:
    objects = list(_kube_objects(path))
    if path.name in HELM_VALUES_EXAMPLES:
        assert not objects, f"{path.name} is Helm values, not Kubernetes objects"
        return
    assert objects, f"{path.name} holds no Kubernetes object"
    for obj in objects:
        for version in KUBE_VERSIONS[1:]:
            _validate(obj, version, path.name)


def _documented_annotations() -> set[str]:
    names = set()
    for line in DOCS.read_text().splitlines():
        if line.startswith(("| `anycastlb.io/", "| `cloud.ionos.com/")):
            names.add(line.split("`")[1])
    return names


def test_docs_list_the_annotations() -> None:
    assert _documented_annotations() == {
        "anycastlb.io/ips",
        "anycastlb.io/ip-count",
        "anycastlb.io/sharing-key",
        "anycastlb.io/proxy-protocol",
        "anycastlb.io/node-selector",
        "cloud.ionos.com/node-selector",
        "anycastlb.io/pops",
        "anycastlb.io/pool",
        "anycastlb.io/hostnames",
        "anycastlb.io/sni-ports",
        "anycastlb.io/sni-default",
    }


def _load_balancer_services() -> list[tuple[str, Obj]]:
    return [
        (path.name, obj)
        for path in _example_files()
        for obj in _kube_objects(path)
        if obj["kind"] == "Service" and obj["spec"].get("type") == "LoadBalancer"
    ]


def test_example_services_use_our_class_and_only_documented_annotations() -> None:
    services = _load_balancer_services()
    assert {name for name, _ in services} == {"service-static-ip.yaml", "service-ionos-migration.yaml"}
    documented = _documented_annotations()
    for name, service in services:
        assert service["spec"]["loadBalancerClass"] == OUR_CLASS, name
        ours = {key for key in service["metadata"]["annotations"] if "anycastlb.io/" in key or "ionos" in key}
        assert ours <= documented, f"{name}: undocumented {sorted(ours - documented)}"
    ionos = dict(services)["service-ionos-migration.yaml"]
    assert "cloud.ionos.com/node-selector" in ionos["metadata"]["annotations"]
    static = dict(services)["service-static-ip.yaml"]
    for address in static["metadata"]["annotations"]["anycastlb.io/ips"].split(","):
        ipaddress.ip_address(address)


def _trusted_ranges(ranges: list[str]) -> None:
    assert ranges, "no trusted PROXY sources"
    for text in ranges:
        network = ipaddress.ip_network(text.strip())
        assert network.prefixlen > 0, f"{text} trusts every address"


def test_ingress_nginx_values_require_proxy_protocol_from_the_pops_only() -> None:
    values = _values(EXAMPLES / "ingress-nginx-values.yaml")["controller"]
    assert values["service"]["type"] == "LoadBalancer"
    assert values["service"]["loadBalancerClass"] == OUR_CLASS
    assert values["service"]["externalTrafficPolicy"] == "Local"
    assert values["service"]["annotations"]["anycastlb.io/proxy-protocol"] == "v2"
    assert values["config"]["use-proxy-protocol"] == "true"
    assert values["config"]["use-forwarded-headers"] == "false"
    _trusted_ranges(values["config"]["proxy-real-ip-cidr"].split(","))


def test_traefik_values_trust_proxy_headers_from_the_pops_only() -> None:
    values = _values(EXAMPLES / "traefik-values.yaml")
    assert values["service"]["spec"]["loadBalancerClass"] == OUR_CLASS
    for port in ("web", "websecure"):
        _trusted_ranges(values["ports"][port]["proxyProtocol"]["trustedIPs"])
        assert values["ports"][port]["forwardedHeaders"] == {"insecure": False, "trustedIPs": []}


def test_external_dns_reads_only_load_balancer_services() -> None:
    deployment = _one(list(_kube_objects(EXAMPLES / "external-dns.yaml")), "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--source=service" in args
    assert "--service-type-filter=LoadBalancer" in args


def test_tunnels_add_the_flag_the_node_agent_and_access_to_the_tunnel_secret_only(
    render: Render, required: Obj
) -> None:
    objects = render(_merged(required, {"tunnels": {"enabled": True}}))
    for obj in objects:
        _validate(obj, "1.30", "chart with tunnels")
    assert "--tunnels" in _flags(_container(objects))
    assert not any(resource == "secrets" for _, resource, _ in _rules(_one(objects, "ClusterRole")))
    secret_rules = [rule for rule in _one(objects, "Role")["rules"] if "secrets" in rule["resources"]]
    assert secret_rules == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["anycastlb-tunnel"],
            "verbs": ["get", "update"],
        },
    ]
    agent = _one(objects, "DaemonSet")
    assert agent["metadata"]["namespace"] == NAMESPACE
    pod = agent["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["args"][:5] == [
        "tunnel-agent",
        "--config-dir",
        "/etc/anycastlb/tunnel",
        "--node",
        "$(NODE_NAME)",
    ]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["config"]["secret"]["secretName"] == "anycastlb-tunnel"
    assert volumes["tun"]["hostPath"] == {"path": "/dev/net/tun", "type": "CharDevice"}
    without_agent = render(_merged(required, {"tunnels": {"enabled": True, "agent": {"enabled": False}}}))
    assert not _by_kind(without_agent, "DaemonSet")


def test_tunnel_nodes_reach_the_command_line_only_when_set(render: Render, required: Obj) -> None:
    selector = "topology.kubernetes.io/region in (metal),!legacy"
    objects = render(_merged(required, {"tunnels": {"enabled": True, "nodes": selector}}))
    flags = _flags(_container(objects))
    assert flags["--tunnels"] is None
    assert flags["--tunnel-nodes"] == selector
    assert not set(flags) - _controller_options()
    every_node = _flags(_container(render(_merged(required, {"tunnels": {"enabled": True}}))))
    assert "--tunnel-nodes" not in every_node


def test_tunnel_nodes_without_tunnels_is_refused_with_what_to_set(render: Render, required: Obj) -> None:
    with pytest.raises(RenderError, match=r"tunnels\.nodes .* needs tunnels\.enabled: true"):
        render(_merged(required, {"tunnels": {"nodes": "role=metal"}}))
    with pytest.raises(RenderError, match="nodes"):
        render(_merged(required, {"tunnels": {"enabled": True, "nodes": ["role=metal"]}}))
