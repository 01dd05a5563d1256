"""Leader election on a coordination.k8s.io/v1 Lease: one replica reconciles, the others wait.

The rules every Kubernetes controller follows (client-go's leaderelection): the holder renews
``renewTime`` every ``renew_every``; a candidate takes the Lease over only when the holder has not
renewed for ``lease_duration``; every write carries the resourceVersion it read, so two
candidates racing for it cannot both win (the loser gets 409 Conflict). A leader that cannot
renew within ``lease_duration`` steps down before anyone else may take over: two leaders at once
would fight over every Service's status.

An API server that keeps failing is logged once, then on a change of error or once a minute with
the repeats counted, and once more when it answers again (k8s/repeats.py).
"""

import asyncio
import logging
import socket
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from anycastlb.k8s.repeats import RepeatedFailure

__all__ = ["LeaderElection"]

log = logging.getLogger("anycastlb.k8s")


class LeaderElection:
    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        name: str,
        *,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_every: float = 2.0,
        retry_every: float = 2.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self.lease_duration = lease_duration
        self.renew_every = renew_every
        self.retry_every = retry_every
        self.leading = False
        self.lease_answered = False  # the API server answered the last attempt (readiness)
        self._errors = RepeatedFailure()

    async def _try(self) -> bool:
        """One attempt to acquire or renew; True if we hold the Lease afterwards."""
        now = datetime.now(UTC)
        try:
            lease = await self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            fresh = Lease(
                metadata=ObjectMeta(name=self.name, namespace=self.namespace),
                spec=LeaseSpec(
                    holderIdentity=self.identity,
                    leaseDurationSeconds=int(self.lease_duration),
                    acquireTime=now,
                    renewTime=now,
                    leaseTransitions=0,
                ),
            )
            try:
                await self.client.create(fresh)
            except ApiError as race:
                if race.status.code == 409:
                    return False
                raise
            return True
        spec = lease.spec or LeaseSpec()
        mine = spec.holderIdentity == self.identity
        renewed = spec.renewTime
        duration = timedelta(seconds=spec.leaseDurationSeconds or self.lease_duration)
        if not mine and spec.holderIdentity and renewed is not None and renewed + duration > now:
            return False  # someone else holds it and is alive
        if not mine:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
            spec.holderIdentity = self.identity
        spec.renewTime = now
        spec.leaseDurationSeconds = int(self.lease_duration)
        lease.spec = spec
        try:
            await self.client.replace(lease)  # carries the resourceVersion we read
        except ApiError as error:
            if error.status.code == 409:
                return False  # someone wrote it since we read it
            raise
        return True

    async def release(self) -> None:
        """On a clean shutdown: hand the Lease back so a standby takes over at its next try instead
        of waiting out ``lease_duration`` (client-go's ReleaseOnCancel)."""
        try:
            lease = await self.client.get(Lease, self.name, namespace=self.namespace)
            if lease.spec is None or lease.spec.holderIdentity != self.identity:
                return
            lease.spec.holderIdentity = None
            lease.spec.leaseDurationSeconds = 1
            lease.spec.renewTime = datetime.now(UTC) - timedelta(seconds=self.lease_duration)
            await self.client.replace(lease)
            log.info("leader_released identity=%s", self.identity)
        except Exception as error:
            log.warning("lease_release_failed error=%r", repr(error))

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever: wait to become leader, run ``lead()`` while we are, cancel it when we are not."""
        while True:
            if not await self._acquired():
                await asyncio.sleep(self.retry_every)
                continue
            log.info("leader_elected identity=%s lease=%s/%s", self.identity, self.namespace, self.name)
            self.leading = True
            task = asyncio.create_task(lead())
            try:
                await self._keep_renewing(task)
            finally:
                self.leading = False
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            log.warning("leader_lost identity=%s action=standby", self.identity)

    async def _acquired(self) -> bool:
        now = asyncio.get_running_loop().time()
        try:
            held = await self._try()
        except (ApiError, OSError) as error:
            self._failed(str(error), now)
            return False
        except Exception as error:
            self._failed(repr(error), now)
            return False
        self.lease_answered = True
        recovery = self._errors.succeeded(now)
        if recovery is not None:
            log.info(
                "lease_recovered failures=%d after=%.0fs last_error=%r",
                recovery.failures,
                recovery.seconds,
                recovery.cause,
            )
        return held

    def _failed(self, cause: str, now: float) -> None:
        """Log the first failure, a change of cause, then once a minute with the repeats counted."""
        self.lease_answered = False
        repeats = self._errors.failed(cause, now)
        if repeats is not None:
            log.warning(
                "lease_error error=%r repeated=%d retry_every=%.0fs", cause, repeats, self.retry_every
            )

    async def _keep_renewing(self, task: "asyncio.Task[None]") -> None:
        loop = asyncio.get_running_loop()
        last_renewal = loop.time()
        while not task.done():
            await asyncio.sleep(self.renew_every)
            if await self._acquired():
                last_renewal = loop.time()
            elif loop.time() - last_renewal > self.lease_duration - self.renew_every:
                return  # step down before another replica may take over
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
