"""A resync's requests: the controller's ``PUT /v1/tenants/{t}/loadbalancers/{name}`` of every
Service's unchanged spec, against a real ``anycastlb control`` on SQLite.

Setup, once per run: a control plane with one 10.64.0.0/16 pool and a tenant. The first
``api_creates`` load balancers are created through the API (timed: creates while the tenant is
small); the rest are written straight into the store, with the rows a create leaves (the load
balancer with its spec's JSON, its dynamic addresses, their links, the revision), while the
control plane is stopped. Creating 5,000 load balancers of ~800 backends through the API takes
hours: every create loads the spec of every load balancer the tenant has
(``control/service/addresses.py`` ``load_holdings``), so the n-th create costs O(n). After the
passes, ``late_creates`` more are created through the API, timed: a new Service in a cluster this
size. Every PUT of a pass must answer 200 with the version the load balancer had (nothing changed);
anything else is counted as a problem.

A pass is what the controller does when every spec changed (a Node joined or left) or when the
control plane cannot tell it what it holds (rows from before spec digests):
``ControlClient.ensure`` (the spec's ``model_dump`` + httpx) of every spec from ``concurrency``
asyncio workers sharing one client, as the controller's workers do. A periodic resync sends none
of them: it asks once for every load balancer (``ControlClient.held``, timed by
:func:`versions_calls`) and PUTs only what changed; a controller that just started asks the same
and compares each spec's digest (:func:`digest_seconds`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update
from tests.support.control_plane import ControlProcess

from anycastlb.control.store.engine import open_store
from anycastlb.control.store.tables import Address, LoadBalancer, LoadBalancerAddress, Pool, Revision, Tenant
from anycastlb.k8s.control_client import ControlClient, ControlError, HeldLoadBalancer
from anycastlb.model.desired import LoadBalancerSpec
from bench.harness.control_stores import ControlUnderTest, server_errors
from bench.harness.controller_resync import GcClock, own_cpu_seconds

__all__ = [
    "POOL_NETWORK",
    "PutBench",
    "PutPass",
    "digest_seconds",
    "put_bench",
    "put_pass",
    "versions_calls",
]

POOL_NETWORK = "10.64.0.0/16"
TENANT = "bench"


@dataclass
class PutPass:
    requests: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float  # the control plane process
    client_cpu_s: float  # this process: model_dump, httpx, the event loop
    errors: Counter[str] = field(default_factory=Counter)
    changed: int = 0  # answers that were not "200, same version"
    gc_longest_s: float = 0.0  # this process's longest garbage collection during the pass


@dataclass
class PutBench:
    control: ControlUnderTest
    token: str
    specs: list[LoadBalancerSpec]
    versions: dict[str, int]  # name → version as created
    create_ms: list[float] = field(default_factory=list)  # the API creates while the tenant is small
    late_create_ms: list[float] = field(default_factory=list)  # after the passes, the tenant full
    seed_seconds: float = 0.0
    server_errors: Counter[str] = field(default_factory=Counter)  # exceptions in the control plane's log
    request_errors: int = 0  # failed PUTs over every pass
    kept_log: Path | None = None  # the log, copied out of the workdir after any error
    versions_ms: list[float] = field(default_factory=list)  # GET loadbalancer-versions, all held
    digest_s: float = 0.0  # LoadBalancerSpec.digest() of every spec


async def _ensure_all(
    url: str, token: str, specs: Sequence[LoadBalancerSpec], concurrency: int
) -> tuple[list[float], Counter[str], dict[str, tuple[int, bool]]]:
    client = ControlClient(url, token, timeout=600)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    answers: dict[str, tuple[int, bool]] = {}
    pending = iter(specs)

    async def worker() -> None:
        for spec in pending:
            started = time.perf_counter()
            try:
                ensured = await client.ensure(spec)
            except ControlError as error:
                errors[f"{error.status or 'no answer'}: {error}"[:160]] += 1
                continue
            latencies.append(1000 * (time.perf_counter() - started))
            answers[spec.name] = (ensured.version, ensured.created)

    try:
        await client.whoami()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    return latencies, errors, answers


def _seed(database: str, specs: Sequence[LoadBalancerSpec], first_address: int) -> dict[str, int]:
    """Write the rows ``specs``' creates would leave; return name → version."""
    store = open_store(database)
    versions: dict[str, int] = {}
    try:
        with store.sessions() as session, session.begin():
            pool_id = session.execute(select(Pool.id).where(Pool.name == "bench")).scalar_one()
            tenant_id = session.execute(select(Tenant.id).where(Tenant.name == TENANT)).scalar_one()
            revision = session.execute(select(Revision.value).where(Revision.id == 1)).scalar_one()
            shared: dict[str, list[Address]] = {}
            number = first_address
            for spec in specs:
                revision += 1
                key = spec.ips.sharing_key
                held = shared.get(key) if key is not None else None
                if held is None:
                    held = []
                    for _ in range(spec.ips.count * len(spec.ips.families)):
                        text = str(ipaddress.ip_address(number))
                        number += 1
                        held.append(
                            Address(address=text, pool_id=pool_id, tenant_id=tenant_id, sharing_key=key)
                        )
                    session.add_all(held)
                    if key is not None:
                        shared[key] = held
                balancer = LoadBalancer(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant_id,
                    name=spec.name,
                    spec=spec.model_dump(mode="json"),
                    spec_digest=spec.digest(),
                    version=revision,
                )
                session.add(balancer)
                session.flush()
                session.add_all(
                    LoadBalancerAddress(
                        load_balancer_id=balancer.id, address_id=address.id, position=position
                    )
                    for position, address in enumerate(held)
                )
                versions[spec.name] = revision
            session.execute(update(Revision).where(Revision.id == 1).values(value=revision))
    finally:
        store.dispose()
    return versions


def _created(
    bench_url: str, token: str, specs: Sequence[LoadBalancerSpec]
) -> tuple[list[float], dict[str, int]]:
    """Create one at a time through the API; (latencies, name → version)."""
    latencies, errors, answers = asyncio.run(_ensure_all(bench_url, token, specs, 1))
    if errors or not all(created for _, created in answers.values()):
        raise RuntimeError(f"creates through the API failed: {dict(errors)}")
    return latencies, {name: version for name, (version, _) in answers.items()}


@contextmanager
def put_bench(
    workdir: Path, specs: list[LoadBalancerSpec], late: list[LoadBalancerSpec], api_creates: int
) -> Iterator[PutBench]:
    """A control plane holding ``specs`` (see the module docstring); creates ``late`` on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = ControlProcess(workdir)
    process.start()
    try:
        control = ControlUnderTest("sqlite", process)
        control.check_listening()
        control.admin_post("/v1/pools", {"name": "bench", "networks": [POOL_NETWORK], "owner": None})
        token = control.tenant(TENANT)
        create_ms, versions = _created(process.url, token, specs[:api_creates])
        process.stop()
        started = time.perf_counter()
        network = ipaddress.ip_network(POOL_NETWORK)
        versions |= _seed(process.database, specs[api_creates:], int(network.network_address) + 4096)
        seed_seconds = time.perf_counter() - started
        process.start()
        control.check_listening()
        bench = PutBench(control, token, specs, versions, create_ms, [], seed_seconds)
        try:
            yield bench
            bench.late_create_ms, _ = _created(process.url, token, late)
        finally:
            process.stop()
            bench.server_errors = server_errors(process.log_path)
            if bench.server_errors or bench.request_errors:
                bench.kept_log = Path(tempfile.gettempdir()) / f"anycastlb-controller-puts-{os.getpid()}.log"
                shutil.copyfile(process.log_path, bench.kept_log)
    finally:
        process.stop()


async def _held(url: str, token: str, calls: int) -> tuple[list[float], dict[str, HeldLoadBalancer]]:
    client = ControlClient(url, token, timeout=600)
    latencies: list[float] = []
    found: dict[str, HeldLoadBalancer] = {}
    try:
        await client.whoami()
        for _ in range(calls):
            started = time.perf_counter()
            found = await client.held()
            latencies.append(1000 * (time.perf_counter() - started))
    finally:
        await client.close()
    return latencies, found


def versions_calls(bench: PutBench, calls: int = 5) -> list[float]:
    """The resync's one request, ``calls`` times (ms each); its answer must list every load
    balancer at the version it was created with, with its spec's digest."""
    latencies, found = asyncio.run(_held(bench.control.url, bench.token, calls))
    wrong = [
        spec.name
        for spec in bench.specs
        if (held := found.get(spec.name)) is None
        or held.version != bench.versions[spec.name]
        or held.spec_digest != spec.digest()
    ]
    if wrong:
        raise RuntimeError(
            f"loadbalancer-versions: {len(wrong)} of {len(bench.specs)} missing, at another version or"
            f" with another digest, e.g. {wrong[0]}"
        )
    return latencies


def digest_seconds(specs: Sequence[LoadBalancerSpec]) -> float:
    """What a controller that just started computes before it skips a PUT: every spec's digest."""
    started = time.perf_counter()
    for spec in specs:
        spec.digest()
    return time.perf_counter() - started


def put_pass(bench: PutBench, concurrency: int) -> PutPass:
    """Every spec PUT once more, unchanged, from ``concurrency`` workers."""
    cpu, own, started = bench.control.cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    with GcClock() as clock:
        latencies, errors, answers = asyncio.run(
            _ensure_all(bench.control.url, bench.token, bench.specs, concurrency)
        )
    seconds = time.perf_counter() - started
    result = PutPass(
        len(bench.specs),
        seconds,
        latencies,
        bench.control.cpu_seconds() - cpu,
        own_cpu_seconds() - own,
        errors,
    )
    result.gc_longest_s = clock.longest
    bench.request_errors += sum(errors.values())
    result.changed = sum(1 for name, answer in answers.items() if answer != (bench.versions.get(name), False))
    return result
