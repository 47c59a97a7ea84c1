"""Alert vocabulary: the kind of alert a name describes (SLO, cause, symptom) and severity order."""

from __future__ import annotations

import re

SEVERITY_RANK = {
    "none": 0, "info": 1, "informational": 1, "low": 2, "warning": 2, "warn": 2, "minor": 2,
    "medium": 2, "error": 3, "high": 3, "major": 3, "critical": 4, "page": 4, "emergency": 4,
}  # fmt: skip
"""Order of severities, most severe highest; an unknown severity counts as warning."""

_NOISE_SEVERITIES = ("none", "info", "informational")

SLO_PATTERN = re.compile(r"slo|burn|error_?budget|errorbudget")
"""Alert names that report user impact (an SLO burning); never suppressed as symptoms."""

CAUSE_PATTERN = re.compile(
    r"cpu|memory|mem(?!ber)|oom|disk|saturat|pool|exhaust|throttl|crash|restart|down|unavailable|"
    r"unreachable|backoff|evict|filesystem|inode|swap|load|full|killed|thread|connections?_?limit"
)
"""Alert names that describe a cause: saturation, a resource running out, a crash."""

SYMPTOM_PATTERN = re.compile(r"latenc|slow|duration|response_?time|p9[059]|error|5xx|fail|timeout|apdex")
"""Alert names that describe a symptom a caller sees: latency or errors."""

ERROR_PATTERN = re.compile(
    r"error|5xx|fail|crash|down|unavailable|unreachable|exhaust|pool|oom|killed|backoff|refused|reset"
)
"""Alert names that mean requests fail (not only slow down): errors, crashes, exhausted pools."""


def alert_kind(alertname: str) -> str:
    """Return ``"slo"``, ``"cause"``, ``"symptom"`` or ``"other"`` for an alert name.

    The name is matched lower-cased, CamelCase split by nothing: ``HighCPUUsage`` is a cause,
    ``HighLatency`` a symptom, ``SLOBurnRate`` an SLO alert.
    """
    name = str(alertname).lower()
    if SLO_PATTERN.search(name):
        return "slo"
    if CAUSE_PATTERN.search(name):
        return "cause"
    if SYMPTOM_PATTERN.search(name):
        return "symptom"
    return "other"
