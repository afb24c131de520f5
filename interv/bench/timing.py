"""Timing helpers: interleaved repetitions and medians, so drift hits every setup alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(
    setups: dict[str, Callable[[], object]], reps: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds of each callable, measured round-robin ``reps`` times after warm-up."""
    for fn in setups.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(reps):
        for name, fn in setups.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def with_ratios(seconds: dict[str, float], baseline: str) -> dict[str, dict[str, float]]:
    base = seconds[baseline]
    return {
        name: {"seconds": round(s, 5), "ratio": round(s / base, 4)} for name, s in seconds.items()
    }
