"""The limit tables' bucket key: one per agent, drawn by the supervisor before any fork, kept on reload."""

import os
from collections.abc import Iterator

import pytest

from anycastlb.dataplane.limits import listener_key
from anycastlb.edge.supervisor import Supervisor
from anycastlb.model.config import EdgeConfig

CONFIG = EdgeConfig(pop="fra", workers=2, metrics=None)


class SameConfig:
    """A config source that always has the same config (a reload that changes no listener)."""

    isolates_listeners = False

    def unbound(self, failures: dict[str, str]) -> None:
        assert not failures

    def load(self) -> EdgeConfig:
        return CONFIG

    def applied(self, config: EdgeConfig) -> None:
        pass

    def rejected(self, error: str) -> None:
        raise AssertionError(error)


@pytest.fixture
def supervisors() -> Iterator[tuple[Supervisor, Supervisor]]:
    made = (Supervisor(SameConfig(), CONFIG), Supervisor(SameConfig(), CONFIG))
    yield made
    for supervisor in made:
        supervisor.reports_in.close()
        supervisor.reports_out.close()


def test_both_tables_get_one_random_key_per_agent(supervisors: tuple[Supervisor, Supervisor]) -> None:
    one, another = supervisors

    assert len(one.counters.key) == 16
    assert one.rates.key == one.counters.key
    assert another.counters.key != one.counters.key  # os.urandom: equal once in 2^128


def test_a_reload_keeps_the_tables_and_their_key(supervisors: tuple[Supervisor, Supervisor]) -> None:
    supervisor = supervisors[0]
    counters, rates, key = supervisor.counters, supervisor.rates, supervisor.counters.key

    assert supervisor.reload()

    assert (supervisor.counters, supervisor.rates) == (counters, rates)
    assert (counters.key, rates.key) == (key, key)


def test_a_forked_child_buckets_like_its_supervisor(supervisors: tuple[Supervisor, Supervisor]) -> None:
    # Every worker, a respawned one too, is forked from the supervisor: it inherits the tables,
    # key included; nothing is sent to it.
    counters = supervisors[0].counters
    wanted = counters.bucket(listener_key("web"))
    pid = os.fork()
    if pid == 0:
        os._exit(0 if counters.bucket(listener_key("web")) == wanted else 1)

    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
