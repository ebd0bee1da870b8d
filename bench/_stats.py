"""p50/p95 for the benchmark scripts, printed the same way everywhere.

`summarise(name, samples_seconds, target_ms=None)` prints
`name: p50 X ms, p95 Y ms (target p95 < T ms: PASS)` and returns the numbers as a dict, so a
script can `return 0 if result["passed"] else 1`. Percentiles are nearest-rank: the p95 is a
time some run really took, never an interpolation below the slow tail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarise(name: str, samples_seconds: Sequence[float], target_ms: float | None = None) -> dict:
    """Print and return p50/p95 in milliseconds; `passed` is None when there is no target."""
    p50 = percentile(samples_seconds, 50) * 1000
    p95 = percentile(samples_seconds, 95) * 1000
    passed = None if target_ms is None else p95 < target_ms
    line = f"{name}: p50 {p50:.2f} ms, p95 {p95:.2f} ms"
    if target_ms is not None:
        line += f" (target p95 < {target_ms:g} ms: {'PASS' if passed else 'FAIL'})"
    print(line, flush=True)
    return {
        "name": name,
        "runs": len(samples_seconds),
        "p50_ms": p50,
        "p95_ms": p95,
        "max_ms": max(samples_seconds) * 1000,
        "target_ms": target_ms,
        "passed": passed,
    }
