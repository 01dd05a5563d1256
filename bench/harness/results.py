"""What a run measures: the contenders, the figures, and per round one :class:`Sample` each."""

from __future__ import annotations

from dataclasses import dataclass, field

LATENCY_RATE = 500  # req/s: issue 12's fixed rate for the p99 target, well inside what direct sustains
IDLE_UNIT = 10_000  # the RSS figure is per this many idle connections
HAPROXY_THREADS = 2  # nbthread: both cores, as the edge's workers
EDGE_WORKERS = 2
RELAY_MODES = ("copy", "splice", "auto")  # the edge config's ``relay``; one contender each
CONTENDERS = ("direct", "haproxy", *(f"edge-{mode}" for mode in RELAY_MODES))


@dataclass(frozen=True)
class FigureSpec:
    key: str
    title: str
    unit: str
    higher_is_better: bool


FIGURES = (
    FigureSpec("bulk1", "bulk, 1 stream", "Gbit/s", True),
    FigureSpec("bulk_cpu", "CPU per GB, bulk 1 stream", "CPU s/GB", False),
    FigureSpec("bulk4", "bulk, 4 streams", "Gbit/s", True),
    FigureSpec("cps", "new connections", "conn/s", True),
    FigureSpec("cpu", "CPU per connection", "µs", False),
    FigureSpec("cpu_user", "… of which user", "µs", False),
    FigureSpec("cpu_sys", "… of which sys", "µs", False),
    FigureSpec("backend_cpu", "nginx CPU per connection (not in the above)", "µs", False),
    FigureSpec("syscalls", "syscalls per connection (strace)", "calls", False),
    FigureSpec("p50", f"latency p50 @ {LATENCY_RATE}/s", "ms", False),
    FigureSpec("p99", f"latency p99 @ {LATENCY_RATE}/s", "ms", False),
    FigureSpec("rss", f"RSS per {IDLE_UNIT // 1000}k idle conns", "MiB", False),
)


@dataclass
class Sample:
    """One contender's figures in one round; ``flags`` name the figures whose run had errors;
    ``syscalls``: calls per connection by syscall name (proxies only)."""

    values: dict[str, float] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    syscalls: dict[str, float] = field(default_factory=dict)


@dataclass
class Results:
    """Per contender, one :class:`Sample` per round, and every anomaly noticed on the way."""

    contenders: tuple[str, ...] = CONTENDERS
    idle_count: int = IDLE_UNIT
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.samples = {name: [] for name in self.contenders}

    def note(self, round_no: int, contender: str, text: str) -> None:
        message = f"round {round_no}, {contender}: {text}"
        self.anomalies.append(message)
        print(f"  ! {message}", flush=True)
