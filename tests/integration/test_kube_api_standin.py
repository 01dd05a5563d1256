"""The Kubernetes API stand-in, driven by lightkube's real clients over HTTP: what the controller's
integration tests rely on behaves as kube-apiserver does."""

import asyncio
import threading
import time
from collections.abc import AsyncIterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from lightkube import ApiError, AsyncClient, Client, KubeConfig
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.operators import exists, in_, not_equal, not_exists, not_in
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event, Node, Service
from lightkube.types import OnErrorResult, PatchType, on_error_retry

from tests.support.kube_api import ApiStatusError, KubeApiStandIn
from tests.support.kube_api.api_server import parse_path
from tests.support.kube_api.resources import LEASE, SERVICE

pytestmark = pytest.mark.integration


@pytest.fixture
def api() -> Iterator[KubeApiStandIn]:
    with KubeApiStandIn() as standin:
        yield standin


@pytest.fixture
def kubeconfig(api: KubeApiStandIn, tmp_path: Path) -> KubeConfig:
    return KubeConfig.from_file(api.kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def client(kubeconfig: KubeConfig) -> Iterator[Client]:
    kube = Client(config=kubeconfig)
    yield kube
    kube.close()


def service(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """A Service as a user writes it: no clusterIP, no nodePorts."""
    labels = spec.pop("labels", None)
    spec.setdefault("ports", [{"name": "http", "port": 80}])
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        **({"labels": labels} if labels else {}),
    }
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def doc(obj: Any) -> dict[str, Any]:
    """A lightkube object as the JSON the server sent (its models type every field Optional)."""
    found: dict[str, Any] = obj.to_dict()
    return found


def typed_service(name: str, **spec: Any) -> Service:
    return cast(Service, Service.from_dict(service(name, **spec)))


def run(coroutine_function: Any, kubeconfig: KubeConfig) -> Any:
    """Run ``coroutine_function(client)`` with a fresh AsyncClient in a fresh event loop."""

    async def main() -> Any:
        async with AsyncClient(config=kubeconfig) as kube:
            return await asyncio.wait_for(coroutine_function(kube), 20)

    return asyncio.run(main())


class Seen:
    """The events a watch delivered, as (type, name), with a wait for the n-th one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._grew = asyncio.Condition()

    async def follow(self, events: AsyncIterable[tuple[str, Any]], count: int) -> list[tuple[str, str]]:
        async for event_type, obj in events:
            async with self._grew:
                self.events.append((event_type, doc(obj)["metadata"]["name"]))
                self._grew.notify_all()
            if len(self.events) >= count:
                break
        return self.events

    async def until(self, count: int) -> None:
        async with self._grew:
            await self._grew.wait_for(lambda: len(self.events) >= count)


# ---- list, get, create ----------------------------------------------------------------------------


def test_list_filters_by_every_label_selector_form_and_by_name(api: KubeApiStandIn, client: Client) -> None:
    api.create(service("web", labels={"app": "web", "tier": "a"}))
    api.create(service("api", labels={"app": "api", "tier": "b"}))
    api.create(service("db", namespace="data", labels={"app": "db"}))

    def names(**selection: Any) -> list[str]:
        return sorted(
            doc(obj)["metadata"]["name"] for obj in client.list(Service, namespace="*", **selection)
        )

    assert names() == ["api", "db", "web"]
    assert names(labels={"app": "web"}) == ["web"]
    assert names(labels={"tier": in_(["a", "b"])}) == ["api", "web"]
    assert names(labels={"tier": not_in(["a"])}) == ["api", "db"]
    assert names(labels={"tier": exists()}) == ["api", "web"]
    assert names(labels={"tier": not_exists()}) == ["db"]
    assert names(labels={"app": not_equal("web"), "tier": exists()}) == ["api"]
    assert names(fields={"metadata.name": "db"}) == ["db"]
    assert names(fields={"metadata.namespace": not_equal("default")}) == ["db"]
    assert [doc(obj)["metadata"]["name"] for obj in client.list(Service, namespace="data")] == ["db"]


def test_a_field_selector_the_kind_does_not_support_is_a_400(client: Client) -> None:
    with pytest.raises(ApiError) as raised:
        list(client.list(Service, namespace="default", fields={"spec.type": "LoadBalancer"}))
    assert raised.value.status.code == 400
    assert raised.value.status.message == "field label not supported: spec.type"


def test_list_pages_with_limit_and_continue(api: KubeApiStandIn, client: Client) -> None:
    for index in range(5):
        api.create({"kind": "Node", "metadata": {"name": f"node-{index}"}})
    listed = client.list(Node, chunk_size=2)
    nodes = list(listed)
    assert [doc(node)["metadata"]["name"] for node in nodes] == [f"node-{index}" for index in range(5)]
    assert listed.resourceVersion == api.resource_version
    assert sum("continue=" in request.query for request in api.requests) == 2
    assert nodes[0].kind == "Node"  # the server sends list items without kind; lightkube's models default it


def test_create_sets_identity_and_a_second_create_is_already_exists(client: Client) -> None:
    created = doc(client.create(Lease(metadata=ObjectMeta(name="leader", namespace="kube-system"))))[
        "metadata"
    ]
    assert created["uid"] and created["creationTimestamp"] and created["resourceVersion"]
    assert created["generation"] == 1
    with pytest.raises(ApiError) as raised:
        client.create(Lease(metadata=ObjectMeta(name="leader", namespace="kube-system")))
    assert (raised.value.status.code, raised.value.status.reason) == (409, "AlreadyExists")
    assert raised.value.status.message == 'leases.coordination.k8s.io "leader" already exists'


def test_get_of_a_missing_object_is_a_not_found_status(api: KubeApiStandIn, client: Client) -> None:
    with pytest.raises(ApiError) as raised:
        client.get(Service, "nope", namespace="default")
    assert (raised.value.status.code, raised.value.status.reason) == (404, "NotFound")
    assert raised.value.status.message == 'services "nope" not found'
    with pytest.raises(ApiStatusError):
        api.get("Service", "default", "nope")


# ---- updates --------------------------------------------------------------------------------------


def test_status_patches_change_only_status_and_object_patches_keep_it(
    api: KubeApiStandIn, client: Client
) -> None:
    api.create(service("web", type="LoadBalancer"))
    ingress = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"}]}}
    patched = client.patch(
        Service.Status,
        "web",
        {"status": ingress, "spec": {"type": "ClusterIP"}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert doc(patched)["status"] == ingress
    assert doc(patched)["spec"]["type"] == "LoadBalancer"  # /status ignores the spec
    assert doc(patched)["metadata"]["generation"] == 1
    client.patch(
        Service, "web", {"status": {"loadBalancer": {}}}, namespace="default", patch_type=PatchType.MERGE
    )
    stored = api.get("Service", "default", "web")
    assert stored["status"] == {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"}]}}
    spec_change = {"spec": {"ports": [{"name": "http", "port": 8080}]}}
    bumped = client.patch(Service, "web", spec_change, namespace="default", patch_type=PatchType.MERGE)
    assert doc(bumped)["metadata"]["generation"] == 2


def test_replace_with_a_stale_resource_version_is_a_conflict(client: Client) -> None:
    client.create(
        Lease(metadata=ObjectMeta(name="leader", namespace="default"), spec=LeaseSpec(holderIdentity="a"))
    )
    seen = client.get(Lease, "leader", namespace="default")
    assert seen.spec is not None
    seen.spec.holderIdentity = "b"
    renewed = client.replace(seen)
    assert doc(renewed)["metadata"]["resourceVersion"] != doc(seen)["metadata"]["resourceVersion"]
    seen.spec.holderIdentity = "c"
    with pytest.raises(ApiError) as raised:
        client.replace(seen)
    assert (raised.value.status.code, raised.value.status.reason) == (409, "Conflict")
    assert doc(client.get(Lease, "leader", namespace="default"))["spec"]["holderIdentity"] == "b"


def test_lease_renewal_by_two_candidates_lets_exactly_one_win(kubeconfig: KubeConfig) -> None:
    async def contest(kube: AsyncClient) -> list[str]:
        lease = Lease(
            metadata=ObjectMeta(name="anycastlb-controller", namespace="kube-system"),
            spec=LeaseSpec(holderIdentity="a", leaseDurationSeconds=15, renewTime=datetime.now(UTC)),
        )
        await kube.create(lease)
        views = [await kube.get(Lease, "anycastlb-controller", namespace="kube-system") for _ in "ab"]
        outcomes = []
        for candidate, view in zip("ab", views, strict=True):
            assert view.spec is not None
            view.spec.holderIdentity, view.spec.renewTime = candidate, datetime.now(UTC)
            try:
                await kube.replace(view)
                outcomes.append(f"{candidate} won")
            except ApiError as error:
                outcomes.append(f"{candidate} {error.status.reason}")
        return outcomes

    assert run(contest, kubeconfig) == ["a won", "b Conflict"]


def test_a_write_that_changes_nothing_takes_no_version_and_makes_no_event(api: KubeApiStandIn) -> None:
    before = api.create(service("web", labels={"app": "web"}))
    after = api.patch("Service", "default", "web", {"metadata": {"labels": {"app": "web"}}})
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert api.resource_version == before["metadata"]["resourceVersion"]


def test_strategic_merge_patches_merge_finalizers_and_ports_as_the_real_server_does(
    api: KubeApiStandIn, client: Client
) -> None:
    created = service(
        "web", type="LoadBalancer", ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}]
    )
    created["metadata"]["finalizers"] = ["other.io/cleanup"]
    api.create(created)
    patch = {
        "metadata": {"finalizers": ["anycastlb.io/load-balancer-cleanup"]},
        "spec": {"ports": [{"port": 443, "name": "tls"}]},
    }
    patched = client.patch(Service, "web", patch, namespace="default")  # lightkube's default: strategic
    assert doc(patched)["metadata"]["finalizers"] == [
        "other.io/cleanup",
        "anycastlb.io/load-balancer-cleanup",
    ]
    assert [(port["port"], port["name"]) for port in doc(patched)["spec"]["ports"]] == [
        (80, "http"),
        (443, "tls"),
    ]
    removal = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["other.io/cleanup"]}}
    patched = client.patch(Service, "web", removal, namespace="default")
    assert doc(patched)["metadata"]["finalizers"] == ["anycastlb.io/load-balancer-cleanup"]


def test_json_patch_removes_a_finalizer_only_at_the_version_it_tested(
    api: KubeApiStandIn, client: Client
) -> None:
    created = service("web")
    created["metadata"]["finalizers"] = ["anycastlb.io/load-balancer-cleanup"]
    version = api.create(created)["metadata"]["resourceVersion"]
    api.patch("Service", "default", "web", {"metadata": {"labels": {"touched": "yes"}}})
    stale = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]
    with pytest.raises(ApiError) as raised:
        client.patch(Service, "web", stale, namespace="default", patch_type=PatchType.JSON)
    assert raised.value.status.code == 422
    stale[0]["value"] = api.resource_version
    released = client.patch(Service, "web", stale, namespace="default", patch_type=PatchType.JSON)
    assert "finalizers" not in doc(released)["metadata"]  # [] is not stored: it reads back absent


def test_server_side_apply_creates_then_merges(kubeconfig: KubeConfig, api: KubeApiStandIn) -> None:
    async def apply_twice(kube: AsyncClient) -> None:
        lease = Lease(
            metadata=ObjectMeta(name="cfg", namespace="default", labels={"a": "1"}),
            spec=LeaseSpec(holderIdentity="x"),
        )
        await kube.apply(lease, field_manager="anycastlb")
        again = Lease(metadata=ObjectMeta(name="cfg", namespace="default", labels={"b": "2"}))
        await kube.apply(again, field_manager="anycastlb")

    run(apply_twice, kubeconfig)
    stored = api.get("Lease", "default", "cfg")
    assert stored["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert stored["spec"] == {"holderIdentity": "x"}
    assert [request.content_type for request in api.requests[-2:]] == ["application/apply-patch+yaml"] * 2


# ---- deletion and watches -------------------------------------------------------------------------


def test_a_finalizer_holds_deletion_until_patched_away_and_the_watch_then_sees_deleted(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    created = service("web")
    created["metadata"]["finalizers"] = ["anycastlb.io/load-balancer-cleanup"]
    version = api.create(created)["metadata"]["resourceVersion"]

    async def delete_and_release(kube: AsyncClient) -> list[tuple[str, str]]:
        seen = Seen()
        watch = kube.watch(Service, namespace="default", resource_version=version)
        watching = asyncio.create_task(seen.follow(watch, 2))
        await kube.delete(Service, "web", namespace="default")
        held = await kube.get(Service, "web", namespace="default")
        assert doc(held)["metadata"]["deletionTimestamp"]
        with pytest.raises(ApiError) as raised:
            await kube.patch(
                Service,
                "web",
                {"metadata": {"finalizers": ["a", "anycastlb.io/load-balancer-cleanup"]}},
                namespace="default",
                patch_type=PatchType.MERGE,
            )
        assert raised.value.status.code == 422
        await kube.patch(
            Service,
            "web",
            {"metadata": {"finalizers": None}},
            namespace="default",
            patch_type=PatchType.MERGE,
        )
        seen_events = await watching
        with pytest.raises(ApiError):
            await kube.get(Service, "web", namespace="default")
        return seen_events

    assert run(delete_and_release, kubeconfig) == [("MODIFIED", "web"), ("DELETED", "web")]


def test_a_watch_without_a_version_starts_with_everything_as_added(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    api.create({"kind": "Node", "metadata": {"name": "n1"}})

    async def watch(kube: AsyncClient) -> list[tuple[str, str]]:
        seen = Seen()
        watching = asyncio.create_task(seen.follow(kube.watch(Node), 2))
        await kube.create(Node(metadata=ObjectMeta(name="n2")))
        return await watching

    assert run(watch, kubeconfig) == [("ADDED", "n1"), ("ADDED", "n2")]


def test_a_label_selected_watch_sees_an_object_leaving_the_selection_as_deleted(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    version = api.create(service("web", labels={"lb": "anycast"}))["metadata"]["resourceVersion"]

    async def relabel(kube: AsyncClient) -> list[tuple[str, str]]:
        seen = Seen()
        watch = kube.watch(Service, namespace="default", labels={"lb": "anycast"}, resource_version=version)
        watching = asyncio.create_task(seen.follow(watch, 2))
        await kube.patch(
            Service,
            "web",
            {"metadata": {"labels": {"lb": None}}},
            namespace="default",
            patch_type=PatchType.MERGE,
        )
        await kube.patch(
            Service,
            "web",
            {"metadata": {"labels": {"lb": "anycast"}}},
            namespace="default",
            patch_type=PatchType.MERGE,
        )
        return await watching

    assert run(relabel, kubeconfig) == [("DELETED", "web"), ("ADDED", "web")]


def test_a_watch_ended_by_a_restart_resumes_from_its_version_without_replay(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    async def restart(kube: AsyncClient) -> list[tuple[str, str]]:
        seen = Seen()
        watching = asyncio.create_task(seen.follow(kube.watch(Node), 2))
        await kube.create(Node(metadata=ObjectMeta(name="n1")))
        await seen.until(1)
        api.restart_watches()
        await kube.create(Node(metadata=ObjectMeta(name="n2")))
        return await watching

    assert run(restart, kubeconfig) == [("ADDED", "n1"), ("ADDED", "n2")]
    watches = [request.query for request in api.requests if "watch=true" in request.query]
    assert len(watches) == 2 and "resourceVersion=" in watches[1]


def test_a_watch_resuming_after_compaction_gets_410_and_lightkube_starts_over(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    api.create({"kind": "Node", "metadata": {"name": "n1"}})
    errors: list[int | None] = []

    def retry(error: Exception, count: int) -> OnErrorResult:
        errors.append(error.status.code if isinstance(error, ApiError) else None)
        return on_error_retry(error, count)

    async def resume(kube: AsyncClient) -> list[tuple[str, str]]:
        seen = Seen()
        watching = asyncio.create_task(seen.follow(kube.watch(Node, on_error=retry), 3))
        await seen.until(1)
        api.compact()
        api.restart_watches()
        await seen.until(2)
        await kube.create(Node(metadata=ObjectMeta(name="n2")))
        return await watching

    # The restart from scratch replays every object as ADDED; nothing says a re-list happened.
    assert run(resume, kubeconfig) == [("ADDED", "n1"), ("ADDED", "n1"), ("ADDED", "n2")]
    assert errors == [410]


def test_a_watch_resuming_after_compaction_raises_410_by_default(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    version = api.create({"kind": "Node", "metadata": {"name": "n1"}})["metadata"]["resourceVersion"]
    api.compact()

    async def resume(kube: AsyncClient) -> None:
        async for _ in kube.watch(Node, resource_version=version):
            pass

    with pytest.raises(ApiError) as raised:
        run(resume, kubeconfig)
    assert (raised.value.status.code, raised.value.status.reason) == (410, "Expired")


def test_the_sync_client_watches_with_a_field_selector(api: KubeApiStandIn, client: Client) -> None:
    version = api.resource_version
    writer = threading.Timer(
        0.05, lambda: [api.create({"kind": "Node", "metadata": {"name": n}}) for n in ("a", "b")]
    )
    writer.start()
    watch = client.watch(Node, fields={"metadata.name": "b"}, resource_version=version)
    event_type, node = next(iter(watch))  # the client's close() ends the stream
    writer.join()
    assert (event_type, doc(node)["metadata"]["name"]) == ("ADDED", "b")


def test_a_watch_server_timeout_ends_the_stream_and_lightkube_reconnects(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    def watches() -> int:
        return sum("watch=true" in request.query for request in api.requests)

    async def timed(kube: AsyncClient) -> list[tuple[str, str]]:
        seen = Seen()
        watching = asyncio.create_task(seen.follow(kube.watch(Node, server_timeout=1), 2))
        await kube.create(Node(metadata=ObjectMeta(name="n1")))
        await seen.until(1)
        deadline = time.monotonic() + 10
        while watches() < 2:  # the stream ended at the server's timeout (1 s) and lightkube resumed
            assert time.monotonic() < deadline, "lightkube never watched again after the server timeout"
            await asyncio.sleep(0.05)
        await kube.create(Node(metadata=ObjectMeta(name="n2")))
        return await watching

    assert run(timed, kubeconfig) == [("ADDED", "n1"), ("ADDED", "n2")]
    assert watches() == 2


# ---- events, leases, faults -----------------------------------------------------------------------


def test_events_are_created_and_found_by_the_object_they_are_about(
    api: KubeApiStandIn, kubeconfig: KubeConfig
) -> None:
    svc = api.create(service("web"))

    async def record(kube: AsyncClient) -> list[str]:
        about = ObjectReference(
            kind="Service", namespace="default", name="web", uid=svc["metadata"]["uid"], apiVersion="v1"
        )
        event = Event(
            metadata=ObjectMeta(generateName="web.", namespace="default"),
            involvedObject=about,
            reason="Allocated",
            message="allocated 192.0.2.10",
            type="Normal",
            source=EventSource(component="anycastlb-controller"),
        )
        await kube.create(event)
        found = kube.list(
            Event, namespace="default", fields={"involvedObject.name": "web", "reason": "Allocated"}
        )
        return [doc(item)["message"] async for item in found]

    assert run(record, kubeconfig) == ["allocated 192.0.2.10"]
    assert [event["reason"] for event in api.events_for("default", "web")] == ["Allocated"]


def test_fail_next_answers_injected_statuses_that_lightkube_raises(
    api: KubeApiStandIn, client: Client
) -> None:
    api.create({"kind": "Node", "metadata": {"name": "n1"}})
    api.fail_next(1, 503, method="GET", path="/nodes")
    with pytest.raises(ApiError) as raised:
        client.get(Node, "n1")
    assert (raised.value.status.code, raised.value.status.reason) == (503, "ServiceUnavailable")
    assert doc(client.get(Node, "n1"))["metadata"]["name"] == "n1"


def test_wait_for_wakes_on_the_write_it_waits_for(api: KubeApiStandIn) -> None:
    api.create(service("web", type="LoadBalancer"))
    ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"}]}}}
    writer = threading.Timer(
        0.05, api.patch, ("Service", "default", "web", ingress), {"subresource": "status"}
    )
    writer.start()
    found = api.wait_for(
        "Service", "default", "web", lambda obj: bool(obj and obj["status"]["loadBalancer"]), 5
    )
    writer.join()
    assert found is not None and found["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.10"
    api.delete("Service", "default", "web")
    assert api.wait_for("Service", "default", "web", lambda obj: obj is None, 1) is None


# ---- Service defaults -----------------------------------------------------------------------------


def test_load_balancer_services_get_the_defaults_and_allocations_of_the_api_server(client: Client) -> None:
    local = client.create(typed_service("local", type="LoadBalancer", externalTrafficPolicy="Local"))
    first, second = (
        doc(local)["spec"],
        doc(client.create(typed_service("cluster", type="LoadBalancer")))["spec"],
    )
    assert first["clusterIP"].startswith("10.96.") and first["clusterIPs"] == [first["clusterIP"]]
    assert (first["ipFamilies"], first["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
    assert (first["sessionAffinity"], first["allocateLoadBalancerNodePorts"]) == ("None", True)
    assert first["ports"][0] == {
        "name": "http",
        "port": 80,
        "protocol": "TCP",
        "targetPort": 80,
        "nodePort": 30000,
    }
    assert "healthCheckNodePort" in first and "healthCheckNodePort" not in second
    assert second["externalTrafficPolicy"] == "Cluster"
    ports = [first["ports"][0]["nodePort"], first["healthCheckNodePort"], second["ports"][0]["nodePort"]]
    assert len(set(ports)) == 3 and all(30000 <= port <= 32767 for port in ports)
    assert doc(local)["status"] == {"loadBalancer": {}}
    plain = doc(client.create(typed_service("plain")))["spec"]
    assert "nodePort" not in plain["ports"][0] and "externalTrafficPolicy" not in plain


def test_a_node_port_already_held_is_invalid(api: KubeApiStandIn, client: Client) -> None:
    held = api.create(service("first", type="NodePort"))["spec"]["ports"][0]["nodePort"]
    with pytest.raises(ApiError) as raised:
        client.create(typed_service("second", type="NodePort", ports=[{"port": 80, "nodePort": held}]))
    assert (raised.value.status.code, raised.value.status.reason) == (422, "Invalid")
    assert "provided port is already allocated" in str(raised.value.status.message)


def test_service_updates_keep_allocations_and_drop_what_the_type_no_longer_needs(api: KubeApiStandIn) -> None:
    created = api.create(
        service(
            "web",
            type="LoadBalancer",
            loadBalancerClass="anycastlb.io/anycast",
            externalTrafficPolicy="Local",
        )
    )
    node_port, ip = created["spec"]["ports"][0]["nodePort"], created["spec"]["clusterIP"]
    rewritten = service(
        "web", type="LoadBalancer", loadBalancerClass="anycastlb.io/anycast", externalTrafficPolicy="Local"
    )
    rewritten["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    replaced = api.replace(rewritten)  # a PUT without nodePorts or clusterIP, as a user's YAML
    assert (replaced["spec"]["ports"][0]["nodePort"], replaced["spec"]["clusterIP"]) == (node_port, ip)
    assert replaced["spec"]["healthCheckNodePort"] == created["spec"]["healthCheckNodePort"]
    with pytest.raises(ApiStatusError) as raised:
        api.patch("Service", "default", "web", {"spec": {"loadBalancerClass": "other.io/lb"}})
    assert raised.value.code == 422 and "may not change once set" in raised.value.message
    demoted = api.patch("Service", "default", "web", {"spec": {"type": "ClusterIP"}})
    assert "nodePort" not in demoted["spec"]["ports"][0]
    assert not {"healthCheckNodePort", "loadBalancerClass", "externalTrafficPolicy"} & set(demoted["spec"])
    assert api.create(service("next", type="NodePort", ports=[{"port": 80, "nodePort": node_port}]))


def test_a_dual_stack_cluster_allocates_both_families() -> None:
    with KubeApiStandIn(dual_stack=True) as api:
        created = api.create(service("web", ipFamilyPolicy="PreferDualStack"))
        assert created["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
        assert created["spec"]["clusterIPs"][1].startswith("fd00:10:96::")
    with KubeApiStandIn() as api, pytest.raises(ApiStatusError) as raised:
        api.create(service("web", ipFamilyPolicy="RequireDualStack"))
    assert raised.value.code == 422


@pytest.mark.parametrize(
    ("supported", "expected"),
    [(True, [{"ip": "192.0.2.1", "ipMode": "VIP"}]), (False, [{"ip": "192.0.2.1"}])],
)
def test_ip_mode_defaults_to_vip_and_an_older_server_drops_it(
    supported: bool, expected: list[dict[str, str]]
) -> None:
    with KubeApiStandIn(ip_mode_supported=supported) as api:
        api.create(service("web", type="LoadBalancer"))
        status = {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}
        patched = api.patch("Service", "default", "web", status, subresource="status")
    assert patched["status"]["loadBalancer"]["ingress"] == expected


# ---- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/namespaces/default/services", (SERVICE, "default", None, None)),
        ("/api/v1/services", (SERVICE, None, None, None)),
        ("/api/v1/namespaces/default/services/web/status", (SERVICE, "default", "web", "status")),
        (
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/leader",
            (LEASE, "kube-system", "leader", None),
        ),
        ("/api/v1/services/web", None),  # a named namespaced object needs its namespace
        ("/apis/coordination.k8s.io/v1/namespaces/x/leases/leader/status", None),  # Leases have no status
        ("/api/v1/namespaces/default/pods", None),
    ],
)
def test_paths_address_kinds_as_lightkube_builds_them(path: str, expected: tuple[Any, ...] | None) -> None:
    assert parse_path(path) == (None if expected is None else tuple(expected))
