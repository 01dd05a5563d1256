"""Kubernetes Events on Services (`kubectl describe service` shows them): Allocated,
AllocationFailed, BackendsUpdated, Configuration (a warning), InvalidConfiguration (a problem in an
annotation or in the Service's own fields, so not "InvalidAnnotation"), Released.

The same (Service, reason, message) is posted once per ``repeat_after`` (10 min): a controller
that retries a refused allocation every few seconds must not flood the API server or the
Service's event list. Posting is best effort: a failure is logged, never retried.
"""

import logging
import time
from datetime import UTC, datetime

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from anycastlb.k8s.views import ServiceView

__all__ = ["EventRecorder"]

log = logging.getLogger("anycastlb.k8s")
_COMPONENT = "anycastlb-controller"


class EventRecorder:
    def __init__(self, client: AsyncClient, *, repeat_after: float = 600.0) -> None:
        self.client = client
        self.repeat_after = repeat_after
        self._posted: dict[tuple[str, str, str, str], float] = {}
        self.posted = 0

    async def post(self, service: ServiceView, kind: str, reason: str, message: str) -> None:
        """``kind`` is Normal or Warning."""
        key = (service.namespace, service.name, reason, message)
        now = time.monotonic()
        if now - self._posted.get(key, -self.repeat_after) < self.repeat_after:
            return
        self._posted[key] = now
        stamp = datetime.now(UTC)
        event = Event(
            metadata=ObjectMeta(generateName=f"{service.name}.", namespace=service.namespace),
            involvedObject=ObjectReference(
                apiVersion="v1",
                kind="Service",
                name=service.name,
                namespace=service.namespace,
                uid=service.uid,
            ),
            reason=reason,
            message=message[:1024],
            type=kind,
            source=EventSource(component=_COMPONENT),
            reportingComponent=_COMPONENT,
            firstTimestamp=stamp,
            lastTimestamp=stamp,
            count=1,
        )
        try:
            await self.client.create(event)
            self.posted += 1
        except (ApiError, OSError) as error:
            log.warning(
                "event_post_failed service=%s/%s reason=%s error=%r",
                service.namespace,
                service.name,
                reason,
                str(error),
            )
        except Exception as error:
            log.warning(
                "event_post_failed service=%s/%s reason=%s error=%r",
                service.namespace,
                service.name,
                reason,
                repr(error),
            )
