"""The control plane's Helm chart (deploy/helm/anycastlb-control), rendered offline and checked.

Every object is validated against the Kubernetes API schemas (kubernetes-validate, strict: an
unknown field fails) for the versions the controller chart's tests use, with the defaults and with
the typical overrides. Asserted: two replicas and a PodDisruptionBudget, readiness on /healthz and
liveness on /livez, the migration as a pre-install/pre-upgrade hook Job while the server runs
with ``--migrate off``, Secrets referenced and never inlined (unless the lab switch creates them),
non-root pods with a read-only root filesystem and no API token, the image the controller chart
uses, and a clear refusal when a required Secret name is missing.

Needs a Helm engine (helm-python-sdk, a dev dependency, or `helm` on PATH); without one the tests
skip and say so.
"""

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer
import yaml

from anycastlb.cli import Migrate, app
from tests.support.helm import HelmEngine, RenderError, engine
from tests.unit.test_helm_chart import KUBE_VERSIONS

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "anycastlb-control"
CONTROLLER_CHART = ROOT / "deploy" / "helm" / "anycastlb-controller"
DOCS = ROOT / "docs" / "kubernetes.md"
RELEASE = "anycastlb-control"
NAMESPACE = "anycastlb-system"
REQUIRED: Obj = {
    "databaseSecret": {"name": "anycastlb-database", "key": "url"},
    "adminTokenSecret": {"name": "anycastlb-admin-token", "key": "token"},
}
# Values a lab would set; they must never reach a manifest unless lab.createSecrets is on.
DATABASE_URL = "postgresql://anycastlb:s3cret-password@db.example.net:5432/anycastlb"
ADMIN_TOKEN = "0123456789abcdef-admin-token-sentinel"  # noqa: S105 - a test value
HOOK = {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation"}


@pytest.fixture(scope="module")
def helm() -> HelmEngine:
    found = engine(CHART, RELEASE, NAMESPACE)
    if found is None:
        pytest.skip(
            "no Helm engine: helm_python (PyPI helm-python-sdk) is not installed and `helm` is not on PATH"
        )
    return found


def merged(base: Obj, override: Obj) -> Obj:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Obj], kind: str) -> Obj:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod(objects: list[Obj], kind: str) -> Obj:
    spec: Obj = one(objects, kind)["spec"]["template"]["spec"]
    return spec


def container(objects: list[Obj], kind: str = "Deployment") -> Obj:
    containers = pod(objects, kind)["containers"]
    assert len(containers) == 1
    found: Obj = containers[0]
    assert found["command"] == ["anycastlb"]
    assert found["args"][0] == "control"
    return found


def flags(found: Obj) -> dict[str, list[str]]:
    """``--name value`` pairs of `anycastlb control`'s arguments; a repeated flag keeps every value."""
    result: dict[str, list[str]] = {}
    rest = found["args"][1:]
    while rest:
        flag, rest = rest[0], rest[1:]
        assert flag.startswith("--"), f"argument {flag!r} is not a flag"
        if rest and not rest[0].startswith("--"):
            value, rest = rest[0], rest[1:]
        else:
            value = ""
        result.setdefault(flag, []).append(value)
    return result


def env(found: Obj) -> dict[str, Obj]:
    return {item["name"]: item for item in found.get("env", [])}


def validate(obj: Obj, version: str, where: str) -> None:
    try:
        kubernetes_validate.validate(obj, desired_version=version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(part) for part in error.path)
        pytest.fail(f"{where}: {obj['kind']}/{obj['metadata']['name']} at {path}: {error.message}")


def control_options() -> dict[str, Any]:
    group = typer.main.get_command(app)
    command = group.commands["control"]  # type: ignore[attr-defined]
    return {opt: param for param in command.params for opt in param.opts}


def matches(selector: Obj, labels: Obj) -> bool:
    return bool(selector) and selector.items() <= labels.items()


@pytest.fixture(scope="module")
def defaults(helm: HelmEngine) -> list[Obj]:
    return helm.render(REQUIRED)


@pytest.fixture(scope="module")
def chart_values() -> Obj:
    values: Obj = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


# --- the defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_object_is_valid_kubernetes(defaults: list[Obj], version: str) -> None:
    for obj in defaults:
        validate(obj, version, "defaults")


def test_the_defaults_render_the_server_its_service_and_the_migration_job(defaults: list[Obj]) -> None:
    assert sorted(obj["kind"] for obj in defaults) == [
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    for obj in defaults:
        assert obj["metadata"]["namespace"] == NAMESPACE
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "anycastlb-control"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/part-of"] == "anycastlb"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_two_replicas_that_prefer_different_nodes_and_a_budget(
    defaults: list[Obj], chart_values: Obj
) -> None:
    deployment = one(defaults, "Deployment")
    assert chart_values["replicaCount"] == deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert one(defaults, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    terms = pod(defaults, "Deployment")["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert [term["podAffinityTerm"]["topologyKey"] for term in terms] == ["kubernetes.io/hostname"]
    assert (
        terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]
        == one(defaults, "Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_readiness_asks_healthz_and_liveness_livez_on_the_api_port(defaults: list[Obj]) -> None:
    server = container(defaults)
    assert flags(server)["--listen"] == ["0.0.0.0:8700"]
    assert server["ports"] == [{"name": "http", "containerPort": 8700, "protocol": "TCP"}]
    assert server["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert server["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    readiness, liveness = server["readinessProbe"], server["livenessProbe"]
    # Out of the Service within 10 s of losing the database; a restart only after a minute.
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= 10
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    for probe in (readiness, liveness, server["startupProbe"]):
        assert probe["timeoutSeconds"] <= probe["periodSeconds"]
    service = one(defaults, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8700, "targetPort": "http", "protocol": "TCP"}
    ]


def test_the_probe_paths_are_routes_of_the_control_plane(tmp_path: Path) -> None:
    """The paths the probes ask are routes of the control plane. Their behaviour is tested in
    tests/integration/control: no token needed (test_authorization), and /healthz answers 503
    without the database while /livez answers 200 (test_api_behaviour)."""
    from anycastlb.control.api.app import create_app  # noqa: PLC0415
    from anycastlb.control.api.runtime import Runtime  # noqa: PLC0415
    from anycastlb.control.server import platform_addresses  # noqa: PLC0415
    from anycastlb.control.store.engine import open_store  # noqa: PLC0415

    store = open_store(f"sqlite:///{tmp_path / 'control.db'}")
    try:
        runtime = Runtime(
            store=store, admin_token=ADMIN_TOKEN, platform=platform_addresses("127.0.0.1", [], [])
        )
        paths = create_app(runtime).openapi()["paths"]
    finally:
        store.dispose()
    for path in ("/healthz", "/livez"):
        assert "get" in paths[path], path


def test_the_migration_runs_once_in_a_hook_job_and_the_server_never_migrates(defaults: list[Obj]) -> None:
    job = one(defaults, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations.items() >= HOOK.items()
    assert annotations["helm.sh/hook-weight"] == "0"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
    migrate = container(defaults, "Job")
    assert flags(migrate)["--migrate"] == [Migrate.ONLY.value]
    assert "--listen" not in flags(migrate)
    assert pod(defaults, "Job")["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 0
    assert 0 < job["spec"]["activeDeadlineSeconds"] < 300, "must end within helm's default --timeout (5m)"
    assert flags(container(defaults))["--migrate"] == [Migrate.OFF.value]
    assert "helm.sh/hook" not in one(defaults, "Deployment")["metadata"].get("annotations", {})


def test_the_job_gets_the_database_url_and_not_the_admin_token(defaults: list[Obj]) -> None:
    variables = env(container(defaults, "Job"))
    assert set(variables) == {"ANYCASTLB_DATABASE_URL"}
    assert variables["ANYCASTLB_DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "anycastlb-database", "key": "url"}
    }


def test_the_server_reads_both_secrets_by_reference(defaults: list[Obj]) -> None:
    variables = env(container(defaults))
    assert set(variables) == {"ANYCASTLB_DATABASE_URL", "ANYCASTLB_ADMIN_TOKEN"}
    assert variables["ANYCASTLB_DATABASE_URL"] == {
        "name": "ANYCASTLB_DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": "anycastlb-database", "key": "url"}},
    }
    assert variables["ANYCASTLB_ADMIN_TOKEN"] == {
        "name": "ANYCASTLB_ADMIN_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "anycastlb-admin-token", "key": "token"}},
    }
    assert "--database" not in flags(container(defaults)), "a URL on the command line shows in ps"


def test_nothing_secret_is_rendered_unless_the_lab_switch_is_on(helm: HelmEngine) -> None:
    values = merged(
        REQUIRED, {"lab": {"createSecrets": False, "databaseUrl": DATABASE_URL, "adminToken": ADMIN_TOKEN}}
    )
    objects = helm.render(values)
    assert by_kind(objects, "Secret") == []
    text = yaml.safe_dump_all(objects)
    assert DATABASE_URL not in text
    assert ADMIN_TOKEN not in text
    assert "s3cret-password" not in text


def test_the_lab_switch_creates_the_secrets_before_the_job_and_warns(helm: HelmEngine) -> None:
    values = {"lab": {"createSecrets": True, "databaseUrl": DATABASE_URL, "adminToken": ADMIN_TOKEN}}
    objects = helm.render(values)
    for obj in objects:
        validate(obj, "1.30", "lab")
    secrets = {secret["metadata"]["name"]: secret for secret in by_kind(objects, "Secret")}
    assert secrets["anycastlb-control-database"]["stringData"] == {"url": DATABASE_URL}
    assert secrets["anycastlb-control-admin-token"]["stringData"] == {"token": ADMIN_TOKEN}
    job_weight = int(one(objects, "Job")["metadata"]["annotations"]["helm.sh/hook-weight"])
    for secret in secrets.values():
        annotations = secret["metadata"]["annotations"]
        assert annotations.items() >= HOOK.items()
        assert int(annotations["helm.sh/hook-weight"]) < job_weight, "the Job needs the URL when it starts"
    variables = env(container(objects))
    assert (
        variables["ANYCASTLB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
        == "anycastlb-control-database"
    )
    assert (
        variables["ANYCASTLB_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == "anycastlb-control-admin-token"
    )
    if helm.renders_notes:
        notes = helm.files(values)["anycastlb-control/templates/NOTES.txt"]
        assert "LAB ONLY" in notes
        assert "helm uninstall` leaves behind" in notes
        assert "LAB ONLY" not in helm.files(REQUIRED)["anycastlb-control/templates/NOTES.txt"]


def test_pods_run_unprivileged_on_a_read_only_root_filesystem(defaults: list[Obj]) -> None:
    for kind in ("Deployment", "Job"):
        spec = pod(defaults, kind)
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(field), (kind, field)
        assert spec["securityContext"]["runAsNonRoot"] is True, kind
        assert spec["securityContext"]["runAsUser"] != 0, kind
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        assert spec["automountServiceAccountToken"] is False, kind
        context = container(defaults, kind)["securityContext"]
        assert context["runAsNonRoot"] is True, kind
        assert context["readOnlyRootFilesystem"] is True, kind
        assert context["allowPrivilegeEscalation"] is False, kind
        assert context["capabilities"] == {"drop": ["ALL"]}, kind
        assert not context.get("privileged"), kind
        mounts = {mount["mountPath"]: mount["name"] for mount in container(defaults, kind)["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{kind}: /tmp must be writable"
        resources = container(defaults, kind)["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"], kind
        assert resources["limits"]["memory"], kind
    account = one(defaults, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod(defaults, "Deployment")["serviceAccountName"] == account["metadata"]["name"]
    assert "serviceAccountName" not in pod(defaults, "Job"), (
        "on install the hook runs before the account exists"
    )


def test_selectors_take_the_server_pods_and_never_the_job(defaults: list[Obj]) -> None:
    server = one(defaults, "Deployment")
    server_labels = server["spec"]["template"]["metadata"]["labels"]
    job_labels = one(defaults, "Job")["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": server["spec"]["selector"]["matchLabels"],
        "Service": one(defaults, "Service")["spec"]["selector"],
        "PodDisruptionBudget": one(defaults, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert matches(selector, server_labels), kind
        assert not matches(selector, job_labels), f"the {kind} would take the migration pod"
    assert "app.kubernetes.io/version" not in selectors["Deployment"], "the selector must survive upgrades"


def test_every_flag_is_an_option_of_anycastlb_control(defaults: list[Obj], helm: HelmEngine) -> None:
    options = control_options()
    everything = helm.render(merged(REQUIRED, OPTION_SETS["everything on"]))
    off = helm.render(merged(REQUIRED, OPTION_SETS["everything off"]))
    for objects in (defaults, everything, off):
        for kind in ("Deployment", "Job"):
            if not by_kind(objects, kind):
                continue
            used = flags(container(objects, kind))
            assert set(used) <= set(options), (
                f"`anycastlb control` has no option {sorted(set(used) - set(options))}"
            )
            for value in used.get("--migrate", []):
                assert value in {mode.value for mode in Migrate}
    envvar = getattr(options["--database"], "envvar", None)
    assert envvar == "ANYCASTLB_DATABASE_URL", "the chart passes the URL in this variable"


def test_the_image_is_the_one_the_controller_chart_runs(defaults: list[Obj]) -> None:
    controller = engine(CONTROLLER_CHART, "anycastlb-controller", NAMESPACE)
    assert controller is not None
    controller_values = {
        "control": {"url": "https://control.example.net:8700"},
        "cluster": "prod-1",
        "tokenSecret": {"name": "anycastlb-token"},
    }
    deployment = one(controller.render(controller_values), "Deployment")
    controller_image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container(defaults)["image"] == controller_image
    assert container(defaults, "Job")["image"] == controller_image
    ours = yaml.safe_load((CHART / "Chart.yaml").read_text())
    theirs = yaml.safe_load((CONTROLLER_CHART / "Chart.yaml").read_text())
    assert ours["appVersion"] == theirs["appVersion"]


def test_helm_lint_strict_passes(helm: HelmEngine) -> None:
    assert helm.lint(REQUIRED) == []


# --- overrides ----------------------------------------------------------------------------------

AMD64_ONLY = {
    "nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
    ]
}
DATABASE_EGRESS = {
    "to": [{"ipBlock": {"cidr": "10.40.0.10/32"}}],
    "ports": [{"port": 5432, "protocol": "TCP"}],
}
OPTION_SETS: dict[str, Obj] = {
    "everything on": {
        "replicaCount": 3,
        "image": {"repository": "registry.example.net/anycastlb/anycastlb", "tag": "0.1.0-rc1"},
        "imagePullSecrets": [{"name": "registry"}],
        "listenAddress": "::",
        "port": 9700,
        "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
        "platformNetworks": ["192.0.2.0/24", "2001:db8:ffff::/48"],
        "logLevel": "debug",
        "extraArgs": ["--max-listeners", "32"],
        "extraEnv": [{"name": "PGSSLROOTCERT", "value": "/etc/anycastlb/db-ca/ca.crt"}],
        "extraVolumes": [{"name": "db-ca", "secret": {"secretName": "db-ca"}}],
        "extraVolumeMounts": [{"name": "db-ca", "mountPath": "/etc/anycastlb/db-ca", "readOnly": True}],
        "migrations": {
            "databaseSecret": {"name": "anycastlb-database-owner", "key": "dsn"},
            "serviceAccountName": "migrate",
        },
        "serviceAccount": {"annotations": {"example.com/role": "control"}},
        "networkPolicy": {
            "enabled": True,
            "ingressFrom": [
                {"ipBlock": {"cidr": "192.0.2.0/24"}},
                {"namespaceSelector": {"matchLabels": {"name": "ingress"}}},
            ],
            "egress": [DATABASE_EGRESS],
        },
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "podLabels": {"team": "network"},
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": AMD64_ONLY}},
    },
    "everything off": {
        "replicaCount": 1,
        "migrations": {"hook": False},
        "serviceAccount": {"create": False, "name": "anycastlb"},
        "podDisruptionBudget": {"enabled": False},
    },
}


@pytest.fixture(scope="module")
def rendered_sets(helm: HelmEngine) -> dict[str, list[Obj]]:
    return {name: helm.render(merged(REQUIRED, values)) for name, values in OPTION_SETS.items()}


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_option_set_renders_valid_objects(
    rendered_sets: dict[str, list[Obj]], name: str, version: str
) -> None:
    for obj in rendered_sets[name]:
        validate(obj, version, f"chart with {name}")


def test_everything_on_reaches_the_pods(rendered_sets: dict[str, list[Obj]]) -> None:
    objects = rendered_sets["everything on"]
    assert sorted(obj["kind"] for obj in objects) == [
        "Deployment",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    assert one(objects, "Deployment")["spec"]["replicas"] == 3
    server = container(objects)
    used = flags(server)
    assert used["--listen"] == ["[::]:9700"]
    assert used["--platform-network"] == ["192.0.2.0/24", "2001:db8:ffff::/48"]
    assert used["--max-listeners"] == ["32"]
    assert used["--log-level"] == ["debug"]
    assert server["image"] == "registry.example.net/anycastlb/anycastlb:0.1.0-rc1"
    assert server["ports"][0]["containerPort"] == 9700
    assert one(objects, "Service")["spec"]["type"] == "LoadBalancer"
    assert one(objects, "Service")["spec"]["ports"][0]["port"] == 9700
    for kind in ("Deployment", "Job"):
        assert env(container(objects, kind))["PGSSLROOTCERT"]["value"] == "/etc/anycastlb/db-ca/ca.crt"
        assert {"name": "db-ca", "mountPath": "/etc/anycastlb/db-ca", "readOnly": True} in container(
            objects, kind
        )["volumeMounts"]
        assert {"name": "db-ca", "secret": {"secretName": "db-ca"}} in pod(objects, kind)["volumes"]
        assert pod(objects, kind)["imagePullSecrets"] == [{"name": "registry"}]
    # The Job migrates as the schema's owner; the server keeps its own user.
    assert env(container(objects, "Job"))["ANYCASTLB_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "anycastlb-database-owner",
        "key": "dsn",
    }
    assert env(server)["ANYCASTLB_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "anycastlb-database"
    assert pod(objects, "Job")["serviceAccountName"] == "migrate"
    assert "--max-listeners" not in flags(container(objects, "Job"))


def test_the_network_policy_opens_the_api_port_and_dns_and_selects_only_the_server(
    rendered_sets: dict[str, list[Obj]],
) -> None:
    objects = rendered_sets["everything on"]
    policy = one(objects, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [
        {
            "ports": [{"port": "http", "protocol": "TCP"}],
            "from": [
                {"ipBlock": {"cidr": "192.0.2.0/24"}},
                {"namespaceSelector": {"matchLabels": {"name": "ingress"}}},
            ],
        }
    ]
    assert policy["egress"] == [
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        DATABASE_EGRESS,
    ]
    selector = policy["podSelector"]["matchLabels"]
    assert matches(selector, one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"])
    assert not matches(selector, one(objects, "Job")["spec"]["template"]["metadata"]["labels"])


def test_without_the_hook_every_replica_migrates_at_start(rendered_sets: dict[str, list[Obj]]) -> None:
    objects = rendered_sets["everything off"]
    assert sorted(obj["kind"] for obj in objects) == ["Deployment", "Service"]
    assert flags(container(objects))["--migrate"] == [Migrate.AUTO.value]
    assert pod(objects, "Deployment")["serviceAccountName"] == "anycastlb"


def test_a_network_policy_without_egress_rules_leaves_egress_alone(helm: HelmEngine) -> None:
    objects = helm.render(merged(REQUIRED, {"networkPolicy": {"enabled": True}}))
    policy = one(objects, "NetworkPolicy")["spec"]
    validate(one(objects, "NetworkPolicy"), "1.30", "ingress-only policy")
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    assert "egress" not in policy


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"adminTokenSecret": REQUIRED["adminTokenSecret"]}, "databaseSecret.name: name an existing Secret"),
        (
            {"databaseSecret": {"name": ""}, "adminTokenSecret": REQUIRED["adminTokenSecret"]},
            "databaseSecret.name: name an existing Secret that holds the PostgreSQL URL",
        ),
        ({"databaseSecret": REQUIRED["databaseSecret"]}, "adminTokenSecret.name: name an existing Secret"),
        ({"lab": {"createSecrets": True, "adminToken": ADMIN_TOKEN}}, "lab.databaseUrl: the PostgreSQL URL"),
        ({"lab": {"createSecrets": True, "databaseUrl": DATABASE_URL}}, "lab.adminToken: the admin token"),
    ],
)
def test_a_missing_secret_is_refused_with_what_to_set(helm: HelmEngine, values: Obj, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        helm.render(values)


@pytest.mark.parametrize(
    ("typo", "field"),
    [
        ({"logLevel": "verbose"}, "logLevel"),
        ({"replicaCount": 0}, "replicaCount"),
        ({"listenAddress": "localhost"}, "listenAddress"),
        ({"platformNetworks": ["192.0.2.0"]}, "platformNetworks"),
        ({"databaseSecret": {"name": "Anycastlb_DB"}}, "databaseSecret"),
        ({"migrations": {"hook": "yes"}}, "hook"),
        ({"service": {"type": "ExternalName"}}, "type"),
        ({"lab": {"adminToken": "short"}}, "adminToken"),
        ({"lab": {"databaseUrl": "sqlite:///state.db"}}, "databaseUrl"),
    ],
)
def test_values_schema_rejects_a_typo(helm: HelmEngine, typo: Obj, field: str) -> None:
    with pytest.raises(RenderError, match=field):
        helm.render(merged(REQUIRED, typo))


# --- docs ---------------------------------------------------------------------------------------


def test_docs_name_every_top_level_value(chart_values: Obj) -> None:
    text = DOCS.read_text()
    start = text.index("## Installing the control plane")
    section = text[start : text.index("\n## ", start + 1)]
    assert "deploy/helm/anycastlb-control" in section
    for key in chart_values:
        if key in ("nameOverride", "fullnameOverride"):
            continue
        assert f"`{key}" in section, f"docs/kubernetes.md does not describe the value {key}"
