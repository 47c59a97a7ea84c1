"""One fault-injection run: topology + faults + workload -> engine -> telemetry -> Case."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aisre.case import Case, Change, Truth
from aisre.errors import SpecError

from .engine import Engine
from .faults import FaultSpec, ResolvedFault, resolve_faults
from .telemetry import alertmanager_payloads, build_telemetry
from .topology import SimTopology, load_topology
from .workload import draw_arrivals

__all__ = ["DETECTION_FALLBACK", "PreparedRun", "prepare", "simulate"]

DETECTION_FALLBACK = 30.0
"""Seconds after the first fault's start used as ``detected_at`` when no alert fired."""

MAX_DURATION = 7 * 86400.0
"""Longest run accepted, in simulated seconds."""


def _number(value: Any, field: str, *, positive: bool = False, limit: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{field} must be a finite number, got {value!r}", field=field)
    if value < 0 or (positive and value == 0):
        raise SpecError(f"{field} must be {'positive' if positive else 'non-negative'}, got {value!r}", field=field)
    if limit is not None and value > limit:
        raise SpecError(f"{field} must be at most {limit:g}, got {value!r}", field=field)
    return float(value)


def simulate(
    topology: str | Path | Mapping[str, Any] | SimTopology,
    faults: Iterable[str | FaultSpec] = (),
    *,
    duration: float = 600.0,
    rate: float = 50.0,
    seed: int = 0,
    start_time: float = 1_700_000_000.0,
    trace_sample: float = 0.1,
    case_id: str | None = None,
) -> Case:
    """Run a fault-injection experiment and return it as a labelled :class:`aisre.case.Case`.

    *topology* is a built-in name, ``random:N``, a YAML/JSON path, a mapping or a
    :class:`SimTopology`; *faults* are :class:`FaultSpec` objects or
    ``KIND:TARGET[@START][+DURATION][*INTENSITY]`` strings (none: normal operation). *rate* is the
    mean offered load in requests per second, *duration* the run in simulated seconds starting
    at unix time *start_time*; *trace_sample* the head-sampled share of traces kept (traces with
    errors are always kept). The same *seed* gives identical output.

    The Case holds metrics, logs, spans, events, alerts and changes; ``truth`` is the first
    fault (``None`` without faults); ``meta["faults"]`` lists every fault,
    ``meta["alertmanager_payloads"]`` the webhook payloads, ``meta["noise_alerts"]`` the
    fingerprints of alerts unrelated to any fault.

    Raises:
        SpecError: for a bad topology, fault spec, rate, duration, seed or sample share,
            naming the field.
    """
    run = prepare(topology, faults, duration=duration, rate=rate, seed=seed, start_time=start_time, trace_sample=trace_sample)
    return run.assemble(run.engine.run(), case_id=case_id)


class PreparedRun:
    """A validated run: the topology, resolved faults, drawn arrivals, the engine and settings.

    :func:`simulate` runs it to the end; the digital twin (:mod:`.twin`) advances it in steps.
    """

    def __init__(self, topo: SimTopology, resolved: list[ResolvedFault], arrivals: Any, engine: Engine,
                 rng: np.random.Generator, settings: dict[str, Any]) -> None:
        self.topo = topo
        self.faults = resolved
        self.arrivals = arrivals
        self.engine = engine
        self.rng = rng
        self.settings = settings

    def assemble(self, result: Any, *, case_id: str | None = None, rng: np.random.Generator | None = None,
                 duration: float | None = None) -> Case:
        """Return the Case of *result* (the engine's record so far): telemetry, alerts, truth.

        *rng* defaults to the run's own generator (what :func:`simulate` uses, so a twin run to
        its end without changes gives the same Case); *duration* to the run's length.
        """
        topo, resolved, cfg = self.topo, self.faults, self.settings
        start_time = cfg["start_time"]
        duration = cfg["duration"] if duration is None else duration
        tel = build_telemetry(self.engine, result, start_time=start_time, duration=duration, rng=rng or self.rng,
                              system=topo.name, trace_sample=cfg["trace_sample"])
        truth = _truth(resolved, start_time)
        detected = _detected(tel.alerts, set(tel.noise), resolved, start_time)
        changes = [Change(**{**c, "time": c["time"] + start_time}) for c in result.changes]
        meta = {
            "simulator": {
                "topology": topo.name,
                "topology_source": topo.source,
                "rate": cfg["rate"],
                "duration": cfg["duration"],
                "seed": cfg["seed"],
                "trace_sample": cfg["trace_sample"],
                "start_time": start_time,
            },
            "faults": [_fault_meta(f, start_time) for f in resolved],
            "bursts": [[b.start + start_time, b.end + start_time, b.factor] for b in self.arrivals.bursts],
            "stats": {
                "requests": int(self.arrivals.times.size),
                "calls": int(result.records.shape[0]),
                "sim_events": int(result.sim_events),
            },
            "noise_alerts": tel.noise,
            "alertmanager_payloads": alertmanager_payloads(tel.alerts),
        }
        return Case(
            id=case_id or _case_id(topo.name, resolved, cfg["seed"]),
            system=topo.name,
            window=(start_time, start_time + duration),
            detected_at=detected,
            topology=topo.to_topology(),
            metrics=tel.metrics,
            logs=tel.logs,
            spans=tel.spans,
            events=tel.events,
            alerts=tel.alerts,
            changes=changes,
            truth=truth,
            meta=meta,
            source="simulator",
        )


def prepare(
    topology: str | Path | Mapping[str, Any] | SimTopology,
    faults: Iterable[str | FaultSpec] = (),
    *,
    duration: float = 600.0,
    rate: float = 50.0,
    seed: int = 0,
    start_time: float = 1_700_000_000.0,
    trace_sample: float = 0.1,
) -> PreparedRun:
    """Validate a run's settings, resolve its faults, draw its arrivals and build its engine
    (not started). Arguments as :func:`simulate`.

    Raises:
        SpecError: for a bad topology, fault spec, rate, duration, seed or sample share.
    """
    topo = load_topology(topology)
    duration = _number(duration, "duration", positive=True, limit=MAX_DURATION)
    rate = _number(rate, "rate")
    start_time = _number(start_time, "start_time")
    trace_sample = _number(trace_sample, "trace_sample", limit=1.0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"seed must be a non-negative integer, got {seed!r}", field="seed")
    resolved = resolve_faults(list(faults), topo, duration)
    rng = np.random.default_rng(int(seed))
    entries = topo.entry_endpoints()
    arrivals = draw_arrivals([w for _, _, w in entries], rate, duration, rng, start_time=start_time, shape=topo.workload)
    engine = Engine(topo, resolved, arrivals, rng, duration=duration)
    settings = {"duration": duration, "rate": rate, "seed": int(seed), "start_time": start_time, "trace_sample": trace_sample}
    return PreparedRun(topo, resolved, arrivals, engine, rng, settings)


def _fault_meta(f: ResolvedFault, start_time: float) -> dict[str, Any]:
    d = f.to_dict()
    d["start"] = f.start + start_time
    d["end"] = f.end + start_time
    return d


def _truth(faults: list[ResolvedFault], start_time: float) -> Truth | None:
    if not faults:
        return None
    f = faults[0]
    if f.kind == "neighbour":
        entity = f.host
        service = f.target
    else:
        entity = f.instances[0] if len(f.instances) == 1 else None
        service = f.service
    meta: dict[str, Any] = {"intensity": f.intensity, "end": f.end + start_time, "spec": f.spec}
    if f.endpoint:
        meta["endpoint"] = f.endpoint
    return Truth(service=service, fault=f.kind, inject_time=f.start + start_time, entity=entity, meta=meta)


def _detected(alerts: list[Any], noise: set[str], faults: list[ResolvedFault], start_time: float) -> float | None:
    if not faults:
        return None
    inject = min(f.start for f in faults) + start_time
    fired = [a.starts_at for a in alerts
             if a.starts_at >= inject and a.fingerprint not in noise and a.labels.get("alertname") != "Watchdog"]
    return min(fired) if fired else inject + DETECTION_FALLBACK


def _case_id(system: str, faults: list[ResolvedFault], seed: int) -> str:
    if not faults:
        return f"sim-{system}-normal-s{seed}"
    f = faults[0]
    more = f"-and-{len(faults) - 1}" if len(faults) > 1 else ""
    return f"sim-{system}-{f.target.replace('/', '.')}-{f.kind}{more}-s{seed}"
