"""Benchmark harnesses: root-cause accuracy (``rca``); triage, memory, gate and the scorecard
join here as they land.

``run_benchmark(sources, methods)`` returns a :class:`BenchResult` whose ``to_dict()`` is the
JSON contract of DESIGN.md; ``compare(result, baseline)`` lists the regressions.
"""

from __future__ import annotations

from aisre.bench.rca import BenchResult, compare, load_result, resolve_topology, run_benchmark

__all__ = ["BenchResult", "compare", "load_result", "resolve_topology", "run_benchmark"]
