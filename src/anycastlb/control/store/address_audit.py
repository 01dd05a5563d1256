"""Addresses a store written by an earlier release may hold that this release refuses (pure).

Why: until the address rules of ``model/addresses.py``, the API accepted IPv6 scope ids
(``::1%1``), IPv4-mapped addresses and multicast backends, and stored them. A row like that is how
one tenant took over another's traffic; left in place it also breaks this release, which reads
every stored address through the strict parser (a holding that does not parse fails every
allocation, a backend that does not parse fails the desired state of every PoP). Nothing here can
guess which of two spellings was meant, so nothing is changed: migration 0006 lists every such
row with what to do, and the control plane does not start until they are gone.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from anycastlb.model.addresses import AddressError, parse_address, parse_network

__all__ = ["StoredAddressProblem", "stored_address_problems"]


@dataclass(frozen=True, slots=True)
class StoredAddressProblem:
    where: str  # which row and field, e.g. "addresses row 17 (tenant 'acme')"
    text: str
    error: str
    fix: str

    def line(self) -> str:
        return f"{self.where}: {self.text!r}: {self.error}; {self.fix}"


def _json(value: Any) -> Any:  # noqa: ANN401 - a JSON column: dict on PostgreSQL, text on SQLite
    return json.loads(value) if isinstance(value, str | bytes) else value


def _address_error(text: object) -> str | None:
    try:
        parse_address(str(text))
    except AddressError as error:
        return str(error)
    return None


def _network_error(text: object) -> str | None:
    try:
        parse_network(str(text))
    except AddressError as error:
        return str(error)
    return None


def stored_address_problems(
    addresses: Iterable[Sequence[Any]],
    pools: Iterable[Sequence[Any]],
    load_balancers: Iterable[Sequence[Any]],
) -> list[StoredAddressProblem]:
    """``addresses``: (row id, address, tenant); ``pools``: (name, networks JSON);
    ``load_balancers``: (id, tenant, name, spec JSON). Returns every stored text the parser refuses."""
    problems: list[StoredAddressProblem] = []
    for row_id, text, tenant in addresses:
        error = _address_error(text)
        if error is not None:
            problems.append(
                StoredAddressProblem(
                    f"addresses row {row_id} (tenant {tenant!r})",
                    text,
                    error,
                    # Text for the operator to read, never executed here.
                    f"release it: DELETE FROM load_balancer_addresses WHERE address_id = {row_id}; "  # noqa: S608
                    f"DELETE FROM addresses WHERE id = {row_id}",
                )
            )
    for name, networks in pools:
        for text in _json(networks) or ():
            error = _network_error(text)
            if error is not None:
                problems.append(
                    StoredAddressProblem(
                        f"pool {name!r} network",
                        str(text),
                        error,
                        "delete the pool or write its network without the refused part",
                    )
                )
    for lb_id, tenant, name, spec_json in load_balancers:
        spec = _json(spec_json) or {}
        fix = f"delete load balancer {name!r} of tenant {tenant!r} (id {lb_id}) or correct its spec"
        for index, text in enumerate((spec.get("ips") or {}).get("addresses") or ()):
            error = _address_error(text)
            if error is not None:
                where = f"load balancer {name!r} of tenant {tenant!r}: ips.addresses[{index}]"
                problems.append(StoredAddressProblem(where, str(text), error, fix))
        for position, listener in enumerate(spec.get("listeners") or ()):
            for number, backend in enumerate(listener.get("backends") or ()):
                error = _address_error(backend.get("address"))
                if error is not None:
                    where = (
                        f"load balancer {name!r} of tenant {tenant!r}: "
                        f"listeners[{position}].backends[{number}].address"
                    )
                    problems.append(StoredAddressProblem(where, str(backend.get("address")), error, fix))
    return problems
