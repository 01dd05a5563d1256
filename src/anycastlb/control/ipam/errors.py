"""Why the allocator refused: one typed error whose ``kind`` picks the HTTP status.

The API maps ``forbidden`` to 403, ``conflict`` and ``exhausted`` to 409 and ``not_found`` to 404; the
message goes to the client as it is, so it says what was wrong and what to change, and never names
another tenant or its load balancers (an address or pool the caller does not own is only
"allocated (to another tenant)" or "not a pool tenant X may use").
"""

from typing import Literal

__all__ = ["AllocationError", "AllocationErrorKind", "InvalidPoolError"]

AllocationErrorKind = Literal["forbidden", "conflict", "exhausted", "not_found"]


class AllocationError(Exception):
    """A request for addresses that cannot be met as asked."""

    def __init__(self, kind: AllocationErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: AllocationErrorKind = kind
        self.message = message


class InvalidPoolError(ValueError):
    """A pool definition that is wrong in itself (a reserved range outside its networks, first after
    last, mixed families): a bad request body (422), not a clash with other pools (409). A plain
    ``ValueError`` subclass so callers that catch ``ValueError`` for validation keep working."""
