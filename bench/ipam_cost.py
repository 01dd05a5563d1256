"""Cost of one IPAM allocation as the holdings grow: ``plan_addresses`` vs a naive address walk.

    PYTHONPATH=src python3 bench/ipam_cost.py [--holdings 1000,10000,100000] [--calls 50] [--rounds 5]

The worst case for the search (it was tests/unit/test_ipam.py's speed test): an IPv6 /48 whose first
N addresses are all held, with a reserved range of ten addresses right after them, and a request for
one dynamic address. For each N, in one process and interleaved round by round:

- ``plan``: ``plan_addresses`` against a ``HoldingTable`` indexed once (what the allocator does);
- ``naive``: the reference, walking the addresses from the start of the pool one by one past held
  (a set of integers) and reserved ones (``--calls`` / 10 calls: it is O(N) per call);
- ``index``: building the ``HoldingTable`` of N holdings (paid per request today, see
  docs/control-plane.md).

Both searches are checked to give the same address before anything is timed. Prints the median and
the spread of ``rounds`` rounds, µs per call (ms for the index), ``naive/plan``, and ``plan ÷ plan at
the smallest N``: the search is O(log N), so that ratio should stay near 1 while N grows 100 times.
A micro benchmark of the pure allocator: it says nothing of the API around it (bench/control_plane.py).
"""

import argparse
import ipaddress
import statistics
import time
from collections.abc import Callable

from anycastlb.control.ipam import Holding, HoldingTable, PoolView, plan_addresses
from anycastlb.model.desired import IPRequest

NETWORK = ipaddress.IPv6Network("2001:db8:100::/48")
BASE = int(NETWORK.network_address)
HTTPS = frozenset({(443, "tcp")})
REQUEST = IPRequest(families=("ipv6",), count=1)
FEWER_CALLS = {"naive": 10, "index": 10**9}  # divisors of --calls: O(N) per call; the index once


def world(held: int) -> tuple[PoolView, list[Holding], tuple[int, int]]:
    """The pool, its first ``held`` addresses held (``::0`` is never handed out), ten reserved after."""
    reserved = (BASE + held + 1, BASE + held + 10)
    first, last = (ipaddress.IPv6Address(address) for address in reserved)
    pool = PoolView("big", (NETWORK,), reserved=((first, last),))
    holdings = [
        Holding(ipaddress.IPv6Address(BASE + i), "big", "acme", False, None, frozenset({f"lb{i}"}), HTTPS)
        for i in range(1, held + 1)
    ]
    return pool, holdings, reserved


def plan(pool: PoolView, table: HoldingTable) -> ipaddress.IPv6Address:
    result = plan_addresses(
        REQUEST, tenant="acme", load_balancer="new", ports=HTTPS, current=(), pools=[pool], holdings=table
    )
    (address,) = result.addresses
    assert isinstance(address, ipaddress.IPv6Address)
    return address


def naive(held: set[int], reserved: tuple[int, int]) -> ipaddress.IPv6Address:
    """The lowest free address by walking integers against a set of the held ones (made once, not
    timed): every held address is looked at once per call."""
    candidate = BASE + 1  # ::0 is the subnet-router anycast address, never handed out
    while candidate in held or reserved[0] <= candidate <= reserved[1]:
        candidate += 1
    return ipaddress.IPv6Address(candidate)


def cases(held: int) -> dict[str, tuple[Callable[[int], None], float]]:
    """Each case runs its operation ``calls`` times; the float turns seconds per call into the unit
    printed."""
    pool, holdings, reserved = world(held)
    table = HoldingTable(holdings)
    taken = {int(holding.address) for holding in holdings}
    expected = ipaddress.IPv6Address(BASE + held + 11)
    assert plan(pool, table) == naive(taken, reserved) == expected, "the two searches disagree"

    def run_plan(calls: int) -> None:
        for _ in range(calls):
            plan(pool, table)

    def run_naive(calls: int) -> None:
        for _ in range(calls):
            naive(taken, reserved)

    def run_index(calls: int) -> None:
        for _ in range(calls):
            HoldingTable(holdings)

    return {"plan": (run_plan, 1e6), "naive": (run_naive, 1e6), "index": (run_index, 1e3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--holdings", default="1000,10000,100000", help="comma-separated N")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    sizes = [int(n) for n in options.holdings.split(",")]
    suites = {n: cases(n) for n in sizes}
    results: dict[tuple[int, str], list[float]] = {}
    for _ in range(options.rounds):
        for n, suite in suites.items():
            for case, (run, scale) in suite.items():
                calls = max(1, options.calls // FEWER_CALLS.get(case, 1))
                started = time.perf_counter()
                run(calls)
                results.setdefault((n, case), []).append((time.perf_counter() - started) / calls * scale)
    print(f"median of {options.rounds} rounds (min-max); plan and naive in µs per call, index in ms")
    smallest = statistics.median(results[sizes[0], "plan"])
    for n in sizes:
        row = [f"N={n:<7}"]
        for case in suites[n]:
            samples = results[n, case]
            row.append(f"{case} {statistics.median(samples):8.1f} ({min(samples):.1f}-{max(samples):.1f})")
        plan_median, naive_median = (statistics.median(results[n, case]) for case in ("plan", "naive"))
        row.append(f"naive/plan {naive_median / plan_median:6.0f}x")
        row.append(f"plan/plan(N={sizes[0]}) {plan_median / smallest:.2f}")
        print("  ".join(row))


if __name__ == "__main__":
    main()
