"""Benchmark settings: how quality and speed are measured; every field is part of a record's key."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from ..devices import CPU, parse_device
from ..exceptions import ConfigError
from ..runtimes.base import PADDINGS


@dataclass
class BenchmarkSettings:
    """How quality and speed are measured; part of every record's key."""

    batch_sizes: list[int] = field(
        default_factory=lambda: [1, 8, 32], metadata={"help": "batch-inference points"}
    )
    realtime: bool = field(default=True, metadata={"help": "measure batch-1 latency over single requests"})
    min_time_s: float = field(
        default=5.0, metadata={"help": "measured time per point (all rounds together), after warm-up"}
    )
    repeats: int = field(
        default=6,
        metadata={
            "help": "rounds per point, the variants taking turns; 6 gives a 96.9% interval of the median"
        },
    )
    warmup: int = field(default=5, metadata={"help": "warm-up requests (real-time) or batches (batch)"})
    max_requests: int = field(default=2000, metadata={"help": "safety cap on real-time requests per point"})
    paddings: list[str] = field(
        default_factory=lambda: ["dynamic"], metadata={"help": "dynamic and/or max_length"}
    )
    max_length: int = field(
        default=128, metadata={"help": "truncation, and the padded length for max_length"}
    )
    n_eval: int | None = field(
        default=None, metadata={"help": "evaluate on the first n examples (None: all)"}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "generation limit for seq2seq"})
    num_beams: int = field(default=1, metadata={"help": "1 = greedy decoding"})
    threads: int | None = field(default=None, metadata={"help": "torch intra-op threads (None: all cores)"})
    n_bootstrap: int = field(default=1000, metadata={"help": "bootstrap resamples for the 95% intervals"})
    seed: int = 0
    time_limit_s: float | None = field(
        default=1200.0,
        metadata={
            "help": "a variant taking longer (build, quality, speed) is stopped and recorded as timeout"
        },
    )

    device: str = field(
        default=CPU,
        metadata={"help": "where the variants run: cpu, cuda (the first GPU) or cuda:N"},
    )

    offline: bool = field(
        default=False,
        metadata={"help": "also measure the offline scenario: throughput at a batch size the search chooses"},
    )
    offline_min_batch: int = field(default=8, metadata={"help": "the offline search's first batch size"})
    offline_max_batch: int = field(
        default=256, metadata={"help": "the offline search's largest batch size (doubling up to it)"}
    )
    offline_memory_mb: float | None = field(
        default=None,
        metadata={
            "help": "memory (MB) a batch may take beyond the loaded models in the offline search; "
            "null: half of the memory available when a variant's search starts"
        },
    )

    op_profile: bool = field(
        default=False,
        metadata={"help": "after the speed rounds, profile each variant's operators (measure.opprofile): "
                          "op_shares_<class> in its batch-32 speed record"},
    )  # fmt: skip

    # how long a variant may take does not change what is measured, nor does the operator profile taken after
    # the speed rounds: not part of a record's key (``--force`` re-measures to add a profile)
    NOT_IN_KEY: ClassVar[tuple[str, ...]] = ("time_limit_s", "op_profile")
    # the offline search's settings change nothing while it is off: keys of runs without it stay as they were
    OFFLINE_FIELDS: ClassVar[tuple[str, ...]] = (
        "offline",
        "offline_min_batch",
        "offline_max_batch",
        "offline_memory_mb",
    )

    def __post_init__(self) -> None:
        self.device = parse_device(self.device)
        if isinstance(self.batch_sizes, int):
            self.batch_sizes = [self.batch_sizes]
        if isinstance(self.paddings, str):
            self.paddings = [self.paddings]
        bad = [b for b in self.batch_sizes if not isinstance(b, int) or b <= 0]
        if bad or not self.batch_sizes:
            raise ConfigError(
                f"batch sizes must be positive integers, got {self.batch_sizes}", "use e.g. [1, 8, 32]"
            )
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool):
            raise ConfigError(f"repeats must be an integer, got {self.repeats!r}", "use e.g. repeats: 6")
        for name in (
            "min_time_s",
            "max_length",
            "max_new_tokens",
            "num_beams",
            "max_requests",
            "n_bootstrap",
            "repeats",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}", f"set {name} > 0")
        if self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, got {self.warmup}", "set warmup to 0 or more")
        for opt in ("n_eval", "threads", "time_limit_s"):
            v = getattr(self, opt)
            if v is not None and v <= 0:
                raise ConfigError(f"{opt} must be positive or null, got {v}", f"remove {opt} or set it > 0")
        self._check_offline()
        unknown = [p for p in self.paddings if p not in PADDINGS]
        if unknown:
            raise ConfigError(
                f"unknown padding {unknown}; known: {', '.join(PADDINGS)}", "use paddings: [dynamic]"
            )

    def _check_offline(self) -> None:
        if not isinstance(self.offline, bool):
            raise ConfigError(f"offline must be true or false, got {self.offline!r}", "use offline: true")
        for name in ("offline_min_batch", "offline_max_batch"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}", f"set {name} to e.g. 256")
        if self.offline_min_batch > self.offline_max_batch:
            raise ConfigError(
                f"offline_min_batch ({self.offline_min_batch}) is above offline_max_batch "
                f"({self.offline_max_batch})",
                "set offline_min_batch <= offline_max_batch, e.g. 8 and 256",
            )
        mem = self.offline_memory_mb
        if mem is not None and (isinstance(mem, bool) or not isinstance(mem, int | float) or not mem > 0):
            raise ConfigError(
                f"offline_memory_mb must be a positive number of MB or null, got {mem!r}",
                "remove offline_memory_mb (half the available memory) or set it > 0, e.g. 4000",
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> BenchmarkSettings:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"unknown benchmark setting(s): {', '.join(sorted(unknown))}",
                f"use only: {', '.join(cls.__dataclass_fields__)}",
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key_dict(self) -> dict[str, Any]:
        """The settings that change what is measured (a record's key is hashed from these)."""
        skip = self.NOT_IN_KEY + (() if self.offline else self.OFFLINE_FIELDS)
        skip += ("device",) if self.device == CPU else ()  # the keys of CPU runs stay as they were
        return {k: v for k, v in self.to_dict().items() if k not in skip}
