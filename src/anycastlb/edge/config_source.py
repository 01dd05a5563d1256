"""Where the supervisor's config comes from: a file (standalone), or the control plane's state on disk.

The supervisor asks its source for the config at every reload (:meth:`load`), validates and
test-binds what it gets, and tells the source how that went (:meth:`applied` / :meth:`rejected`).

- :class:`FileSource`: ``edge.yaml``, re-read on SIGHUP (standalone mode).
- :class:`ControlSource`: ``base.yaml`` (optional: workers, metrics, bgp, drain and relay settings,
  no listeners) merged with the desired state the follower wrote (``--control`` mode). A pending
  state newer than the running one is tried; once it is applied it becomes the last-known-good, and
  if it is refused, ``rejected.json`` says why and the previous config keeps running.
"""

import logging
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from anycastlb.edge.desired_listeners import edge_config_for, listeners_for
from anycastlb.edge.state_store import StateStore
from anycastlb.model.bgp import BgpConfig
from anycastlb.model.config import ConfigError, EdgeConfig, load_config, parse_config
from anycastlb.model.config_file import read_yaml_file
from anycastlb.model.desired import PopDesiredState

__all__ = ["ConfigSource", "ControlSource", "FileSource", "load_base"]

log = logging.getLogger("anycastlb.edge")


class ConfigSource(Protocol):
    # True: a listener that cannot bind is left out and reported (:meth:`unbound`), the rest serve.
    # A state from the control plane mixes tenants, and one tenant's taken port must not stop the
    # others' changes. False (a file an operator wrote): the whole config is refused, as before.
    isolates_listeners: bool

    def unbound(self, failures: dict[str, str]) -> None:
        """Listeners (name -> why) left out of the config now running because they cannot bind."""

    def load(self) -> EdgeConfig:
        """The config to run now; raises ConfigError (or OSError) if there is none that is valid."""

    def applied(self, config: EdgeConfig) -> None:
        """The config of the last :meth:`load` was validated, test-bound and sent to every child."""

    def rejected(self, error: str) -> None:
        """The config of the last :meth:`load` was refused; the previous one keeps running."""


class FileSource:
    """Standalone mode: the config file, as it is on disk at each reload."""

    isolates_listeners = False

    def __init__(self, path: Path) -> None:
        self.path = path

    def unbound(self, failures: dict[str, str]) -> None:
        pass

    def load(self) -> EdgeConfig:
        return load_config(self.path)

    def applied(self, config: EdgeConfig) -> None:
        pass

    def rejected(self, error: str) -> None:
        pass


def load_base(pop: str, path: Path | None) -> EdgeConfig:
    """``base.yaml`` for ``pop`` (None: just the PoP, every other setting at its default).

    ``bgp.vips`` (per-VIP attributes) may name VIPs the control plane has not sent yet: they are
    checked on their own here, and applied to the VIPs the desired state has."""
    if path is None:
        return EdgeConfig(pop=pop)
    raw: Any = read_yaml_file(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level (workers:, metrics:, bgp:, ...)")
    if raw.setdefault("pop", pop) != pop:
        raise ConfigError(f"{path} is for PoP {raw['pop']!r} but --pop is {pop!r}; make them agree")
    if raw.get("listeners"):
        raise ConfigError(
            f"{path}: in --control mode listeners come from the control plane; "
            "remove listeners: from base.yaml"
        )
    bgp = raw.get("bgp")
    if not isinstance(bgp, dict) or not bgp.get("vips"):
        return parse_config(raw, source=str(path))
    config = parse_config(
        {**raw, "bgp": {key: value for key, value in bgp.items() if key != "vips"}}, str(path)
    )
    try:
        with_vips = BgpConfig.model_validate(bgp)
    except ValidationError as error:
        problems = "\n".join(
            f"  bgp.{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigError(f"{path} is invalid:\n{problems}") from None
    return config.model_copy(update={"bgp": with_vips})


class ControlSource:
    """``--control`` mode: base.yaml and the desired state the follower keeps on disk."""

    isolates_listeners = True

    def __init__(self, pop: str, base_path: Path | None, store: StateStore) -> None:
        self.pop = pop
        self.base_path = base_path
        self.store = store
        self.running_version: int | None = None
        self._loaded_version: int | None = None
        self._candidate: PopDesiredState | None = None  # a pending state the last load() took

    def initial(self) -> EdgeConfig:
        """The config to start with: base + last-known-good, or base alone (no listeners) if there is
        none. Raises ConfigError only for base.yaml; a last-known-good that no longer fits is logged
        and skipped. A restart retries a rejected version: it may fit now."""
        base = load_base(self.pop, self.base_path)
        self.store.clear_rejected()
        saved = self.store.last_known_good()
        if saved is None:
            log.info("no_last_known_good waiting_for=control state_dir=%s", self.store.directory)
            return base
        try:
            config = edge_config_for(base, saved.state)
        except ConfigError as error:
            log.error(
                "last_known_good_unusable file=%s error=%r action=start-empty waiting_for=control",
                self.store.path("last-known-good.json"),
                str(error),
            )
            return base
        self.running_version = saved.state.version
        log.info(
            "starting_from_last_known_good version=%d saved=%s listeners=%d",
            saved.state.version,
            saved.saved_at.isoformat(timespec="seconds"),
            len(config.listeners),
        )
        return config

    def load(self) -> EdgeConfig:
        """Base + the pending state if it is newer than the running one, else base + last-known-good."""
        self._candidate = None
        base = load_base(self.pop, self.base_path)
        pending = self.store.pending()
        running = self.running_version
        if pending is not None and (running is None or pending.state.version > running):
            self._candidate = pending.state
            self._loaded_version = pending.state.version
            return edge_config_for(base, pending.state)
        saved = self.store.last_known_good()
        self._loaded_version = saved.state.version if saved is not None else None
        return base if saved is None else edge_config_for(base, saved.state)

    def unbound(self, failures: dict[str, str]) -> None:
        for name, reason in failures.items():
            log.error("listener_unbound listener=%s error=%r (the other listeners serve)", name, reason)
        try:
            self.store.write_unbound(failures)
        except OSError as error:
            log.error("unbound_save_failed error=%r", error.strerror)

    def applied(self, config: EdgeConfig) -> None:
        self.running_version = self._loaded_version
        candidate, self._candidate = self._candidate, None
        if candidate is None:
            return
        try:
            self.store.promote(candidate)
        except OSError as error:
            log.error(
                "last_known_good_save_failed file=%s error=%r (the edge runs version %d; a restart "
                "would start from the previous one)",
                self.store.path("last-known-good.json"),
                error.strerror,
                candidate.version,
            )
        for skipped in listeners_for(candidate, config.metrics)[1]:
            log.warning(
                "listener_skipped load_balancer=%s address=%s port=%d/%s reason=%r",
                skipped.load_balancer_id,
                skipped.address,
                skipped.port,
                skipped.protocol,
                skipped.reason,
            )
        log.info("last_known_good_saved version=%d listeners=%d", candidate.version, len(config.listeners))

    def rejected(self, error: str) -> None:
        candidate, self._candidate = self._candidate, None
        if candidate is None:
            return
        try:
            self.store.reject(candidate.version, error)
        except OSError as failure:
            log.error(
                "rejected_save_failed file=%s error=%r", self.store.path("rejected.json"), failure.strerror
            )
        log.error(
            "pending_rejected version=%d keeping=%s error=%r",
            candidate.version,
            self.running_version if self.running_version is not None else "none",
            error,
        )
