"""The edge's desired state on disk: what the control plane sent, and the last state that ran.

Three files in the state directory (``--state-dir``, default ``/var/lib/anycastlb/edge-{pop}``):

- ``pending.json``: written by the follower, a validated :class:`PopDesiredState` just received
  from the control plane. Nothing has been tried with it yet.
- ``last-known-good.json``: written only by the supervisor, after it validated, test-bound and
  applied a pending state. It is therefore always a state that ran, and it is what the edge starts
  from when the control plane is unreachable (static stability).
- ``rejected.json``: written by the supervisor when it refused a pending state (its version and the
  error), so the follower reports it as a problem.

Every write is atomic (a temporary file in the same directory, rename): a reader sees the old file
or the new one, never half of one. The supervisor's files are also flushed (fsync of the file
before the rename, of the directory after it), so they survive a power cut. A file
that does not parse anyway (a disk error, a hand edit) is logged with its path and ignored: a
corrupt last-known-good means starting empty and waiting for the control plane, never a crash.
"""

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from anycastlb.model.desired import PopDesiredState
from anycastlb.model.duration import STORED_SECONDS

__all__ = ["Rejection", "SavedState", "StateStore", "default_state_dir", "write_atomic"]

log = logging.getLogger("anycastlb.edge")

PENDING, LAST_KNOWN_GOOD, REJECTED = "pending.json", "last-known-good.json", "rejected.json"
UNBOUND = "unbound.json"
_T = TypeVar("_T")


def default_state_dir(pop: str) -> Path:
    return Path(f"/var/lib/anycastlb/edge-{pop}")


@dataclass(frozen=True, slots=True)
class SavedState:
    state: PopDesiredState
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class Rejection:
    version: int
    error: str
    at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_saved(raw: Any) -> SavedState:  # noqa: ANN401 - decoded JSON
    """An earlier release saved durations as bare seconds: read them so (model/duration.py)."""
    state = PopDesiredState.model_validate(raw["state"], context=STORED_SECONDS)
    return SavedState(state, datetime.fromisoformat(raw["saved_at"]))


def _parse_unbound(raw: Any) -> dict[str, str]:  # noqa: ANN401 - decoded JSON
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ValueError("expected an object of listener name -> reason")
    return {str(key): value for key, value in raw.items()}


def _parse_rejection(raw: Any) -> Rejection:  # noqa: ANN401 - decoded JSON
    return Rejection(int(raw["version"]), str(raw["error"]), datetime.fromisoformat(raw["at"]))


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash at any point leaves the old or the new file.

    ``durable``: also survive a power cut (fsync the file before the rename and the directory after
    it). Without it the rename is still atomic for every reader, at no disk-flush cost."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    if not durable:
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


class StateStore:
    """The three files of one edge's state directory; reads are cached until a file changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[tuple[int, int, int], object]] = {}

    def prepare(self) -> None:
        """Create the directory (private to this user); OSError says which path and why."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(
                error.errno,
                f"cannot create the state directory {self.directory}: {error.strerror} "
                "(pass --state-dir DIR to use another one)",
            ) from None

    def path(self, name: str) -> Path:
        return self.directory / name

    # ---- reading ---------------------------------------------------------------------------------

    def _read(self, name: str, parse: Callable[[Any], _T]) -> _T | None:
        path = self.path(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._cache.pop(name, None)
            return None
        except OSError as error:
            log.error("state_file_unreadable file=%s error=%r action=ignored", path, error.strerror)
            return None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]  # type: ignore[return-value]  # stored by this method with this parse
        value: _T | None = None
        try:
            value = parse(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None  # replaced or removed between stat and read: the next read sees the new one
        except OSError as error:
            log.error("state_file_unreadable file=%s error=%r action=ignored", path, error.strerror)
        except (ValueError, KeyError, TypeError, ValidationError, RecursionError) as error:
            summary = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.error("state_file_corrupt file=%s error=%r action=ignored", path, summary)
        self._cache[name] = (stamp, value)  # a corrupt file is logged once, not on every read
        return value

    def pending(self) -> SavedState | None:
        return self._read(PENDING, _parse_saved)

    def last_known_good(self) -> SavedState | None:
        return self._read(LAST_KNOWN_GOOD, _parse_saved)

    def rejected(self) -> Rejection | None:
        return self._read(REJECTED, _parse_rejection)

    def unbound(self) -> dict[str, str]:
        """Listeners of the running state that could not be bound: name -> why."""
        return self._read(UNBOUND, _parse_unbound) or {}

    # ---- writing ---------------------------------------------------------------------------------

    @staticmethod
    def _saved(state: PopDesiredState) -> bytes:
        return json.dumps(
            {"saved_at": _now().isoformat(), "state": state.model_dump(mode="json")}, separators=(",", ":")
        ).encode()

    def write_pending(self, state: PopDesiredState) -> None:
        """The follower: a state the control plane sent, validated, not tried yet.

        Not flushed to disk (it is on the way from the control plane to the supervisor, which
        reads it within milliseconds; after a power cut the edge starts from last-known-good and
        asks again), so a disk under load adds no flush to the time a change takes to apply."""
        write_atomic(self.path(PENDING), self._saved(state), durable=False)

    def promote(self, state: PopDesiredState) -> None:
        """The supervisor: ``state`` was validated, test-bound and applied; it is the one to start from.

        A rejection of this version or an older one is over, so it is removed."""
        write_atomic(self.path(LAST_KNOWN_GOOD), self._saved(state))
        rejection = self.rejected()
        if rejection is not None and rejection.version <= state.version:
            self.clear_rejected()

    def reject(self, version: int, error: str) -> None:
        """The supervisor: the pending state of ``version`` was refused for ``error``."""
        raw = {"version": version, "error": error, "at": _now().isoformat()}
        write_atomic(self.path(REJECTED), json.dumps(raw).encode())

    def write_unbound(self, failures: dict[str, str]) -> None:
        """The supervisor: these listeners of the state it runs could not be bound (others serve)."""
        write_atomic(self.path(UNBOUND), json.dumps(failures).encode(), durable=False)

    def clear_rejected(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(REJECTED).unlink()
