"""The end of rotation grace periods: a task of the control plane's event loop.

Nothing else would remove a rotated node's previous key from the PoPs once its grace period has
passed (no request marks that moment), so every few seconds each replica checks for one that is
due and, if so, drops it in a write transaction (serialized by the writers' lock: two replicas
finishing the same rotation do it once, the second finds nothing due). Not audited: it is the
scheduled end of the rotation the audit log already holds.
"""

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from anycastlb.control.api.runtime import Runtime
from anycastlb.control.errors import ApiError
from anycastlb.control.service.clusters import finish_rotations, rotations_due
from anycastlb.control.store.tables import utcnow

__all__ = ["SWEEP_EVERY", "finish_due_rotations"]

log = logging.getLogger("anycastlb.control")
SWEEP_EVERY = 5.0  # seconds; a previous key lives at most this long past its grace period


async def finish_due_rotations(runtime: Runtime, every: float = SWEEP_EVERY) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(runtime.read, lambda s: rotations_due(s, utcnow())):
                done = await asyncio.to_thread(
                    runtime.write, lambda s: finish_rotations(s, utcnow()), change=None
                )
                log.info("rotation_finished nodes=%d", done)
        except (SQLAlchemyError, ApiError) as error:  # the store is down: the next sweep tries again
            log.warning("rotation_sweep_failed error=%r", str(error))
