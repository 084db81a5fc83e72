"""Benchmark plumbing: a calibration workload around every benchmark, and BENCH_SLOWDOWN.

Calibration: right before and right after each benchmark, a fixed reference
workload that uses none of this project's code (CPython's C JSON codec plus an
interpreter loop, about 1 ms a call) is timed for about 0.1 s.  Its median goes
into the benchmark's ``extra_info["calibration"]``, so ``bench/gate.py`` can
compare ``benchmark median / calibration median``: a ratio that holds on a
faster or slower machine, and while the machine's speed drifts during the run
(the calibration is measured seconds, not minutes, away from its benchmark).

BENCH_SLOWDOWN=1.6 makes every benchmarked call take 1.6 times as long (it
busy-waits for 0.6 times the call's own duration after each call), so anyone
can check that ``make bench-check BENCH_SLOWDOWN=1.6`` fails.  Unset or 1: no
effect.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import events_audit

# where the benchmarked code was imported from: gate.py compare checks that
# the base's runs measured the base's build, not the working tree's
PACKAGE = str(Path(events_audit.__file__).resolve().parent)

# Bump when calibrate() changes: ratios recorded against another workload do not compare.
CALIBRATION_ID = "json-roundtrip+pyscan/1"
CALIBRATION_MIN_TIME = 0.1  # seconds of calibration before and after each benchmark
CALIBRATION_MIN_SAMPLES = 15

_DOC = json.dumps(
    {
        "id": "event-12345",
        "type": "user.action",
        "source": "user-service",
        "timestamp": "2025-01-11T10:30:00Z",
        "data": {
            "action": "login",
            "user_id": "67890",
            "ip": "10.0.1.2",
            "amount": 12.5,
            "ok": True,
            "tags": ["a", "b"],
            "note": 'caf\u00e9 "quoted" \\ tab\t',
        },
    }
).encode()
_TEXT = _DOC.decode() * 20

_slowdown = 1.0  # set from BENCH_SLOWDOWN in pytest_configure


def calibrate() -> int:
    """One unit of reference work: half in C (json), half in the interpreter.

    The benchmarks are both compiled code and pure Python twins; a reference
    with both keeps the ratios of either kind steady across CPUs.
    """
    count = 0
    for _ in range(20):
        count += len(json.dumps(json.loads(_DOC)))
    for ch in _TEXT:  # the kind of per-character loop the pure twins run
        if ch == '"' or ch == "\\" or ch < " ":
            count += 1
    return count


def _calibration_samples() -> list[float]:
    calibrate()  # first call outside the samples: caches warm, as for the benchmark rounds
    samples: list[float] = []
    until = time.perf_counter() + CALIBRATION_MIN_TIME
    while len(samples) < CALIBRATION_MIN_SAMPLES or time.perf_counter() < until:
        t0 = time.perf_counter()
        calibrate()
        samples.append(time.perf_counter() - t0)
    return samples


def _parse_slowdown(text: str) -> float:
    try:
        value = float(text) if text.strip() else 1.0
    except ValueError:
        value = 0.0
    if not value >= 1.0 or value > 100:  # also rejects nan
        raise pytest.UsageError(f"BENCH_SLOWDOWN must be a number from 1 to 100, got {text!r}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    global _slowdown
    _slowdown = _parse_slowdown(os.environ.get("BENCH_SLOWDOWN", ""))


def _slowed(function: Callable[..., Any], factor: float) -> Callable[..., Any]:
    def slowed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = function(*args, **kwargs)
        # Busy-wait, not sleep: the extra time is CPU work, proportional to the call.
        deadline = start + (time.perf_counter() - start) * factor
        while time.perf_counter() < deadline:
            pass
        return result

    return slowed


class _SlowedBenchmark(BenchmarkFixture):
    """The plugin's fixture, its target wrapped by _slowed (BENCH_SLOWDOWN).

    A subclass (not a proxy) because pytest-benchmark checks the fixture's type.
    """

    slowdown: float = 1.0

    def __call__(self, function_to_benchmark: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return super().__call__(_slowed(function_to_benchmark, self.slowdown), *args, **kwargs)

    def pedantic(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return super().pedantic(_slowed(target, self.slowdown), *args, **kwargs)


@pytest.fixture
def benchmark(benchmark: BenchmarkFixture) -> Iterator[BenchmarkFixture]:
    """pytest-benchmark's fixture, bracketed by calibration runs (and BENCH_SLOWDOWN)."""
    if _slowdown != 1.0:
        benchmark.__class__ = _SlowedBenchmark
        benchmark.slowdown = _slowdown  # type: ignore[attr-defined]
        benchmark.extra_info["slowdown"] = _slowdown
    if benchmark.disabled:
        yield benchmark
        return
    benchmark.extra_info["package"] = PACKAGE
    before = _calibration_samples()
    yield benchmark
    if benchmark.stats is None:  # the test did not get to benchmark anything
        return
    after = _calibration_samples()
    benchmark.extra_info["calibration"] = {
        "id": CALIBRATION_ID,
        "median": statistics.median(before + after),
        "before": statistics.median(before),
        "after": statistics.median(after),
    }
