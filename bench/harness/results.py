"""What a run measures: the contenders, the figures, and per round one :class:`Sample` each."""

from __future__ import annotations

from dataclasses import dataclass, field

LATENCY_RATE = 500  # req/s: well inside what the direct path sustains on 2 cores
IDLE_UNIT = 10_000  # the RSS figure is per this many idle connections
CONTENDERS = ("direct", "haproxy", "edge-1w", "edge-2w")


@dataclass(frozen=True)
class FigureSpec:
    key: str
    title: str
    unit: str
    higher_is_better: bool


FIGURES = (
    FigureSpec("bulk1", "bulk, 1 stream", "Gbit/s", True),
    FigureSpec("bulk4", "bulk, 4 streams", "Gbit/s", True),
    FigureSpec("cps", "new connections", "conn/s", True),
    FigureSpec("p50", f"latency p50 @ {LATENCY_RATE}/s", "ms", False),
    FigureSpec("p99", f"latency p99 @ {LATENCY_RATE}/s", "ms", False),
    FigureSpec("rss", f"RSS per {IDLE_UNIT // 1000}k idle conns", "MiB", False),
)


@dataclass
class Sample:
    """One contender's figures in one round; ``flags`` name the figures whose run had errors."""

    values: dict[str, float] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


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
