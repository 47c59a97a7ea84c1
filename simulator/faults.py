"""Fault specs: ``KIND:TARGET[@START][+DURATION][*INTENSITY][#FLAG]``, parsed and resolved.

``cpu:cartservice@300+120*0.9`` is a CPU hog on every cartservice instance from second 300 of
the run for 120 s taking 90 % of the CPU limit. START and DURATION are seconds from the run's
start and take an ``s``, ``m`` or ``h`` suffix (``@5m+2m``); without START a fault begins at
half the run, without DURATION it lasts to the end, without INTENSITY it uses the kind's
default (:data:`DEFAULT_INTENSITY`). What each kind does to which signal is in
``docs/faults.md``.

TARGET is a service (``cartservice``), one instance (``cartservice-1``), a host for
``neighbour`` (``node-2``), or ``service/endpoint`` for ``error`` (``cartservice/GetCart``).

FLAG names the feature flag that guards the faulty code path of a code-level fault (``error``,
``deploy``, ``config``: :data:`FLAGGABLE`): ``error:paymentservice/Charge#charge-v2`` is an
exception on Charge that began when flag ``charge-v2`` was switched on at the fault's start.
Switching that flag off ends the fault (the digital twin's ``toggle_flag``); the flag change is
an event of kind ``config`` at the fault's start (attributes ``flag``, ``enabled``), the evidence
remediation reads to propose it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from aisre.case import FAULT_KINDS
from aisre.errors import SpecError

from .topology import SimTopology

__all__ = ["DEFAULT_INTENSITY", "FAULT_KINDS", "FLAGGABLE", "FaultSpec", "ResolvedFault", "parse_fault", "resolve_faults"]

DEFAULT_INTENSITY = {
    "cpu": 0.9,
    "mem": 0.5,
    "disk": 0.8,
    "delay": 0.2,
    "loss": 0.3,
    "socket": 0.5,
    "crash": 1.0,
    "error": 0.5,
    "deploy": 0.5,
    "config": 0.5,
    "pool": 0.8,
    "neighbour": 0.8,
}
"""Intensity used when a spec gives none; the meaning per kind is in ``docs/faults.md``
(``delay`` is seconds added per call, every other kind a fraction in (0, 1])."""

FLAGGABLE = ("error", "deploy", "config")
"""Fault kinds whose faulty code path a feature flag can guard (``#FLAG`` in a spec)."""

_SPEC = re.compile(
    r"^(?P<kind>[^:]*):(?P<target>[^@+*#]*)"
    r"(?:@(?P<start>[^+*#]*))?(?:\+(?P<duration>[^*#]*))?(?:\*(?P<intensity>[^#]*))?(?:#(?P<flag>.*))?$"
)
_FLAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME = re.compile(r"^(?P<value>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<unit>[smh]?)$")


@dataclass(frozen=True)
class FaultSpec:
    """One fault as the user wrote it; ``None`` fields take defaults when the run resolves it."""

    kind: str
    target: str
    start: float | None = None
    duration: float | None = None
    intensity: float | None = None
    flag: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise SpecError(f"unknown fault kind {self.kind!r}; known: {' '.join(FAULT_KINDS)}", field="kind")
        if not isinstance(self.target, str) or not self.target.strip():
            raise SpecError("a fault needs a target (service, instance, host or service/endpoint)", field="target")
        for name in ("start", "duration", "intensity"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise SpecError(f"fault {name} must be a finite number, got {v!r}", field=name)
            if v < 0 or (name != "start" and v == 0):
                raise SpecError(f"fault {name} must be {'non-negative' if name == 'start' else 'positive'}, got {v!r}", field=name)
        if self.intensity is not None and self.kind != "delay" and self.intensity > 1:
            raise SpecError(f"{self.kind} intensity is a fraction in (0, 1], got {self.intensity!r}", field="intensity")
        if "/" in self.target and self.kind != "error":
            raise SpecError(f"only error faults target an endpoint (service/endpoint), got {self.target!r}", field="target")
        if self.flag is not None:
            if self.kind not in FLAGGABLE:
                raise SpecError(f"only {', '.join(FLAGGABLE)} faults sit behind a feature flag, not {self.kind}", field="flag")
            if not isinstance(self.flag, str) or not _FLAG.match(self.flag):
                raise SpecError(f"a flag name is letters, digits, '.', '_' or '-', got {self.flag!r}", field="flag")

    def __str__(self) -> str:
        text = f"{self.kind}:{self.target}"
        if self.start is not None:
            text += f"@{self.start:g}"
        if self.duration is not None:
            text += f"+{self.duration:g}"
        if self.intensity is not None:
            text += f"*{self.intensity:g}"
        if self.flag is not None:
            text += f"#{self.flag}"
        return text


@dataclass(frozen=True)
class ResolvedFault:
    """A fault bound to a run: service, instances, host, endpoint, absolute times, intensity."""

    kind: str
    service: str
    instances: tuple[str, ...]
    host: str | None
    endpoint: str | None
    start: float
    end: float
    intensity: float
    spec: str
    target: str
    flag: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (times in simulated seconds from the run's start); ``flag``
        only for a fault behind a feature flag."""
        d: dict[str, object] = {
            "kind": self.kind,
            "target": self.target,
            "service": self.service,
            "instances": list(self.instances),
            "host": self.host,
            "endpoint": self.endpoint,
            "start": self.start,
            "end": self.end,
            "intensity": self.intensity,
            "spec": self.spec,
        }
        if self.flag is not None:
            d["flag"] = self.flag
        return d


def _time(text: str, field: str) -> float:
    m = _TIME.match(text.strip())
    if not m:
        raise SpecError(f"fault {field} must be seconds like 300, 5m or 1.5h, got {text!r}", field=field)
    return float(m["value"]) * _UNITS[m["unit"]]


def parse_fault(text: str | FaultSpec) -> FaultSpec:
    """Parse ``KIND:TARGET[@START][+DURATION][*INTENSITY][#FLAG]`` into a :class:`FaultSpec`.

    Raises:
        SpecError: naming the field (kind, target, start, duration, intensity, flag) that is wrong.
    """
    if isinstance(text, FaultSpec):
        return text
    if not isinstance(text, str):
        raise SpecError(f"a fault spec must be text like cpu:cartservice@300+120*0.9, got {type(text).__name__}", field="fault")
    m = _SPEC.match(text.strip())
    if not m:
        raise SpecError(f"fault {text!r} is not KIND:TARGET[@START][+DURATION][*INTENSITY][#FLAG]", field="fault")
    kind = m["kind"].strip().lower()
    if kind not in FAULT_KINDS:
        raise SpecError(f"unknown fault kind {kind!r}; known: {' '.join(FAULT_KINDS)}", field="kind")
    start = _time(m["start"], "start") if m["start"] is not None else None
    duration = _time(m["duration"], "duration") if m["duration"] is not None else None
    intensity = None
    if m["intensity"] is not None:
        try:
            intensity = float(m["intensity"])
        except ValueError:
            raise SpecError(f"fault intensity must be a number, got {m['intensity']!r}", field="intensity") from None
    flag = m["flag"].strip() if m["flag"] is not None else None
    return FaultSpec(kind, m["target"].strip(), start, duration, intensity, flag)


def resolve_faults(
    faults: Iterable[str | FaultSpec], topology: SimTopology, duration: float
) -> list[ResolvedFault]:
    """Bind fault specs to *topology* for a run of *duration* seconds.

    Raises:
        SpecError: for an unknown target (field ``target``), a target of the wrong kind for the
            fault, or a start at or after the end of the run (field ``start``).
    """
    placement = topology.placement()
    by_instance = {inst: (svc, host) for inst, svc, host in placement}
    hosts = {h.name for h in topology.hosts}
    services = {s.name: s for s in topology.services}
    out: list[ResolvedFault] = []
    for raw in faults:
        spec = parse_fault(raw)
        start = duration / 2 if spec.start is None else float(spec.start)
        if start >= duration:
            raise SpecError(f"fault {spec} starts at {start:g} s, at or after the run's end ({duration:g} s)", field="start")
        end = duration if spec.duration is None else min(duration, start + float(spec.duration))
        intensity = DEFAULT_INTENSITY[spec.kind] if spec.intensity is None else float(spec.intensity)
        target = spec.target
        endpoint = None
        host = None
        if "/" in target:
            target, endpoint = target.split("/", 1)
        if target in services:
            svc = services[target]
            initial = [f"{target}-{i}" for i in range(svc.replicas)]
            if spec.kind == "crash":
                # a crash takes down a share of the replicas, at least one
                initial = initial[: max(1, math.ceil(intensity * len(initial) - 1e-9))]
            instances = tuple(initial)
            host = by_instance[instances[0]][1]
        elif target in by_instance:
            svc = services[by_instance[target][0]]
            instances = (target,)
            host = by_instance[target][1]
        elif target in hosts and spec.kind == "neighbour":
            host = target
            instances = tuple(i for i, (s, h) in by_instance.items() if h == host and int(i.rsplit("-", 1)[1]) < services[s].replicas)
            names = sorted({by_instance[i][0] for i in instances})
            svc = services[names[0]] if names else topology.services[0]
        else:
            kinds = "a service or instance" + (" or host" if spec.kind == "neighbour" else "")
            raise SpecError(f"fault {spec}: unknown target {target!r}; expected {kinds} of {topology.name!r}", field="target")
        if spec.kind == "neighbour" and host is None:
            raise SpecError(f"fault {spec}: {target!r} runs on no modelled host; give the topology hosts", field="target")
        if spec.kind == "error":
            endpoint = endpoint or svc.endpoints[0].name
            if endpoint not in {e.name for e in svc.endpoints}:
                known = ", ".join(e.name for e in svc.endpoints)
                raise SpecError(f"fault {spec}: service {svc.name!r} has no endpoint {endpoint!r}; known: {known}", field="target")
        out.append(
            ResolvedFault(
                kind=spec.kind,
                service=svc.name,
                instances=instances,
                host=host,
                endpoint=endpoint,
                start=start,
                end=end,
                intensity=intensity,
                spec=str(replace(spec, start=start, duration=end - start, intensity=intensity)),
                target=spec.target,
                flag=spec.flag,
            )
        )
    return out
