"""The store's counters: the revision (the writers' lock and the source of every version number)
and the token generation (bumped by every token change; replicas drop their auth cache when it
moves)."""

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from anycastlb.control.store.tables import Pop, Revision, TokenGeneration

__all__ = ["bump", "bump_token_generation", "lock", "token_generation", "touch_pops"]


def lock(session: Session) -> int:
    """Take the writers' lock (row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
    database) and return the current revision. Call first in every transaction that writes."""
    value = session.execute(select(Revision.value).where(Revision.id == 1).with_for_update()).scalar_one()
    return int(value)


def bump(session: Session) -> int:
    """Advance the revision (the caller holds the lock) and return the new value."""
    value = lock(session) + 1
    session.execute(update(Revision).where(Revision.id == 1).values(value=value))
    return value


def touch_pops(session: Session, pops: tuple[str, ...], version: int) -> None:
    """Mark the PoPs that must see a change (empty tuple: every PoP)."""
    statement = update(Pop).values(desired_version=version)
    if pops:
        statement = statement.where(Pop.name.in_(pops))
    session.execute(statement)


def bump_token_generation(session: Session) -> None:
    """Call in every transaction that issues, rotates or removes a token (the caller holds the
    writers' lock): other replicas then forget what they cached about tokens."""
    session.execute(
        update(TokenGeneration).where(TokenGeneration.id == 1).values(value=TokenGeneration.value + 1)
    )


def token_generation(session: Session) -> int:
    return int(session.execute(select(TokenGeneration.value).where(TokenGeneration.id == 1)).scalar_one())
