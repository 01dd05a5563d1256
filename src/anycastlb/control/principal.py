"""Who is calling: the admin, one tenant, or one PoP. Every route asks one of the ``require_*``
functions below; they raise the error the caller may see.

Rules (shared/DESIGN.md, "fail closed on trust"): a tenant reaching for another tenant's objects
gets 404, exactly as if they did not exist, so ids cannot be probed; a caller of the wrong kind
(a PoP on a tenant path, a tenant on an admin path) gets 403, which tells nothing about objects.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from anycastlb.control.errors import Forbidden, NotFound

__all__ = ["Credential", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["admin", "tenant", "pop"]
    name: str  # tenant or PoP name; "admin" for the admin
    token_id: str | None = None  # the token used (alb_tenant_<id>, never the secret); None: the admin

    def require_admin(self) -> None:
        if self.kind != "admin":
            raise Forbidden("this needs the admin token")

    def require_tenant_access(self, tenant: str) -> None:
        """Admin, or this very tenant; another tenant sees 404."""
        if self.kind == "admin":
            return
        if self.kind == "pop":
            raise Forbidden("a PoP credential cannot use tenant APIs")
        if self.name != tenant:
            raise NotFound(f"tenant {tenant!r} not found")

    def require_pop_read(self, pop: str) -> None:
        """Admin, or this very PoP; another PoP sees 404."""
        if self.kind == "admin":
            return
        if self.kind == "tenant":
            raise Forbidden("only the admin and the PoP itself read a PoP's desired state")
        if self.name != pop:
            raise NotFound(f"PoP {pop!r} not found")

    def require_pop_itself(self, pop: str) -> None:
        if self.kind != "pop":
            raise Forbidden("only the PoP itself reports its status (use its credential)")
        if self.name != pop:
            raise NotFound(f"PoP {pop!r} not found")


@dataclass(frozen=True, slots=True)
class Credential:
    """A stored token as authentication reads it: whose it is and until when it is good (the
    expiry is checked on every request, also when the token comes from a replica's cache)."""

    principal: Principal
    token_id: str
    expires_at: datetime | None  # None: never

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def expired_message(self) -> str:
        when = self.expires_at.isoformat() if self.expires_at is not None else "?"
        if self.principal.kind == "pop":
            renew = f"the admin issues a new one: anycastlb pops rotate-credential {self.principal.name}"
        else:
            renew = (
                f"ask the admin for a new one (anycastlb tenants token create {self.principal.name}), "
                "and next time rotate it before it expires (anycastlb tenants token rotate)"
            )
        return f"token {self.token_id} expired at {when}; {renew}"
