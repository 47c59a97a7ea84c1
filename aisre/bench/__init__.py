"""Benchmark harnesses: root-cause accuracy (``rca``), the open AI SRE scorecard
(``scorecard``); triage, memory and gate live in their modules.

``run_benchmark(sources, methods)`` returns a :class:`BenchResult` whose ``to_dict()`` is the
JSON contract of DESIGN.md; ``compare(result, baseline)`` lists the regressions.
"""

from __future__ import annotations

from aisre.bench.rca import BenchResult, compare, load_result, resolve_topology, run_benchmark
from aisre.bench.scorecard import (
    compare_scorecard,
    load_scorecard,
    run_scorecard,
    save_scorecard,
    scorecard_figures,
    scorecard_tables,
    scorecard_text,
    write_scorecard_html,
)

__all__ = [
    "BenchResult",
    "compare",
    "compare_scorecard",
    "load_result",
    "load_scorecard",
    "resolve_topology",
    "run_benchmark",
    "run_scorecard",
    "save_scorecard",
    "scorecard_figures",
    "scorecard_tables",
    "scorecard_text",
    "write_scorecard_html",
]
