"""The action catalogue: what remediation may do, when it applies, how to undo it, what it risks.

Every action is an :class:`ActionSpec`: a name, a precondition on the case, a builder for its
parameters, its inverse, the effect it is expected to have and its blast radius. The blast radius
comes from the dependency graph: the target and every node that calls it, directly or
transitively (``Topology.call_graph()``), each weighted by its tier (:data:`TIER_WEIGHTS`), times
the share of that footprint the action disturbs (:attr:`ActionSpec.scope`): adding replicas
disturbs little, a rollback replaces the whole service.

Actions register by name; third-party packages add more through the ``aisre.actions``
entry-point group (each entry point names an :class:`ActionSpec` or a zero-argument callable
returning one). A new action must also be declared in the policy schema, or policy denies it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

import networkx as nx

from aisre.case import Action, Case
from aisre.errors import SpecError, UsageError

__all__ = [
    "ACTION_GROUP",
    "NO_LIMIT_RPS",
    "TIER_WEIGHTS",
    "ActionSpec",
    "Target",
    "adds_capacity_only",
    "available_actions",
    "blast_radius",
    "get_action",
    "inverse_action",
    "register_action",
    "resolve_target",
]

ACTION_GROUP = "aisre.actions"
"""The entry-point group third-party actions register under."""

TIER_WEIGHTS: dict[str, int] = {"critical": 4, "standard": 2, "best-effort": 1}
"""How much one affected node of each tier counts towards a blast radius."""

_UNKNOWN_TIER = "standard"

NO_LIMIT_RPS = 1_000_000_000
"""The ``rps`` an executable inverse of ``rate_limit`` carries beside ``remove=True``: an executor
that understands ``remove`` lifts the limit; one that does not sets a limit nothing reaches."""


@dataclass(frozen=True)
class Target:
    """What an action acts on, resolved against the case's topology.

    ``entity`` is the name the hypothesis used; ``service`` the service it belongs to;
    ``instance`` the instance (pod) when the hypothesis named one. ``known`` says whether the
    service is in the topology (if not, tier and replicas are defaults and the blast radius
    counts the target alone).
    """

    entity: str
    service: str
    instance: str | None = None
    kind: str = "service"
    tier: str = _UNKNOWN_TIER
    replicas: int = 1
    known: bool = False
    attrs: Mapping[str, Any] = field(default_factory=dict)


_INSTANCE_SUFFIX = re.compile(r"^(?P<svc>.+?)(?:-[0-9a-f]{6,10})?(?:-[0-9a-z]{5}|-\d+)$")


def resolve_target(case: Case, entity: str) -> Target:
    """Return the :class:`Target` for *entity* (a service, or an instance of one) in *case*.

    An instance is recognised by its topology kind (``instance``, with a ``service`` attribute)
    or by a Kubernetes-style suffix (``cartservice-7d9f8b6c4-x2x9z``, ``cartservice-1``) on the
    name of a known service. ``replicas`` is the topology's, or the count the service's latest
    ``scale`` event set when the case has one (a scale-up made during the incident).
    """
    topo = case.topology
    if topo is None:
        return Target(entity=entity, service=entity)
    service, instance = entity, None
    if entity in topo:
        node = topo.node(entity)
        if node.get("kind") == "instance":
            instance = entity
            service = str(node.get("service") or _strip_suffix(entity, topo) or entity)
    else:
        base = _strip_suffix(entity, topo)
        if base is not None:
            service, instance = base, entity
    if service not in topo:
        return Target(entity=entity, service=service, instance=instance)
    node = topo.node(service)
    return Target(
        entity=entity,
        service=service,
        instance=instance,
        kind=str(node.get("kind", "service")),
        tier=str(node.get("tier") or _UNKNOWN_TIER),
        replicas=_live_replicas(case, service, max(int(node.get("replicas") or 1), 1)),
        known=True,
        attrs=node,
    )


def _live_replicas(case: Case, service: str, declared: int) -> int:
    """Return the replica count the service's latest ``scale`` event set (a scale-up during the
    incident), else *declared* (the topology's)."""
    ev = case.events
    if ev.empty:
        return declared
    rows = ev[(ev["kind"].astype(str) == "scale") & (ev["entity"].astype(str) == service)]
    if rows.empty:
        return declared
    last = rows.iloc[int(rows["time"].to_numpy().argmax())]
    value = _attrs(last["attributes"]).get("replicas")
    try:
        n = int(value)
    except (TypeError, ValueError):
        return declared
    return n if n >= 1 else declared


def _strip_suffix(entity: str, topo: Any) -> str | None:
    m = _INSTANCE_SUFFIX.match(entity)
    if m and m.group("svc") in topo:
        return m.group("svc")
    return None


def blast_radius(case: Case, target: Target, scope: float = 1.0) -> tuple[int, list[str]]:
    """Return ``(radius, affected)`` for disturbing *scope* (0..1] of *target*.

    ``affected`` is the target's service and every node that depends on it transitively,
    sorted; the radius is the sum of their tier weights times *scope*, rounded up, at least 1.
    Without a topology only the target counts.
    """
    topo = case.topology
    if topo is None or target.service not in topo:
        affected = [target.service]
        weight = TIER_WEIGHTS.get(target.tier, TIER_WEIGHTS[_UNKNOWN_TIER])
    else:
        graph = topo.call_graph()
        affected = sorted({target.service} | nx.ancestors(graph, target.service))
        weight = sum(TIER_WEIGHTS.get(str(graph.nodes[n].get("tier")), TIER_WEIGHTS[_UNKNOWN_TIER]) for n in affected)
    return max(1, math.ceil(weight * scope - 1e-9)), affected


@dataclass(frozen=True)
class ActionSpec:
    """One kind of action in the catalogue.

    ``precondition(case, target)`` returns ``None`` when the action applies, else the reason it
    does not. ``params(case, target)`` returns the action's parameters and ``inverse(target,
    params)`` the text of the action that undoes it (``None`` when nothing can).
    ``scope(target)`` is the share of the target's footprint the action disturbs.
    ``fixes`` lists the fault kinds the action addresses, for the planner.
    """

    name: str
    summary: str
    effect: str
    reversible: bool
    fixes: tuple[str, ...]
    precondition: Callable[[Case, Target], str | None]
    params: Callable[[Case, Target], dict[str, Any]]
    inverse: Callable[[Target, Mapping[str, Any]], str | None]
    scope: Callable[[Target], float] = lambda _t: 1.0

    def applies(self, case: Case, target: Target) -> str | None:
        """Return ``None`` when this action applies to *target* in *case*, else why not."""
        return self.precondition(case, target)

    def build(self, case: Case, target: Target, **overrides: Any) -> Action:
        """Return the :class:`Action` this spec proposes for *target*, *overrides* on its params.

        Raises:
            SpecError: when the precondition does not hold.
        """
        why_not = self.precondition(case, target)
        if why_not is not None:
            raise SpecError(f"{self.name} does not apply to {target.entity}: {why_not}", field="action")
        params = {**self.params(case, target), **overrides}
        radius, affected = blast_radius(case, target, self.scope(target))
        params.setdefault("affected", affected)
        params.setdefault("blast_radius_known", target.known)
        params.setdefault("tier", target.tier)
        return Action(
            name=self.name,
            target=target.instance if self._instance_level(target) else target.service,
            params=params,
            inverse=self.inverse(target, params),
            reversible=self.reversible,
            blast_radius=radius,
            expected_effect=self.effect,
        )

    def _instance_level(self, target: Target) -> bool:
        return target.instance is not None and self.name in ("restart", "shift_traffic")


# --------------------------------------------------------------------------- the six built-ins


def _is_workload(case: Case, t: Target) -> str | None:
    if t.kind in ("database", "queue", "cache", "host", "endpoint"):
        return f"{t.service} is a {t.kind}, not a workload aisre manages"
    return None


def _scale_params(case: Case, t: Target) -> dict[str, Any]:
    # Doubling is the usual first step, and at least three replicas: with two, the degraded pod
    # still takes half the traffic. The policy caps the factor (max-scale-factor).
    return {"service": t.service, "from_replicas": t.replicas, "replicas": max(t.replicas * 2, t.replicas + 1, 3)}


REMEDIATOR = "aisre"
"""The author aisre's own changes carry: they are remediation, never a cause to roll back."""


def _deploys(case: Case, service: str) -> list[dict[str, Any]]:
    """Return recent deploy/config changes to *service* that a rollback undoes, newest first:
    aisre's own are remediation, not causes; a feature flag switched (no revision to go back to)
    is undone by ``toggle_flag``, and rolling the Deployment back would not touch it."""
    found: list[dict[str, Any]] = []
    for c in case.changes:
        if c.service == service and c.author != REMEDIATOR:
            found.append({"id": c.id, "time": c.time, "revision": c.revision, "kind": "deploy"})
    for time, kind, a in _change_events(case, service):
        if a.get("author") == REMEDIATOR or (a.get("flag") and not a.get("revision")):
            continue
        found.append({"id": a.get("id"), "time": time, "revision": a.get("revision"),
                      "previous_revision": a.get("previous_revision"), "kind": kind,
                      "flag": a.get("flag")})  # fmt: skip
    return sorted(found, key=lambda d: -(d.get("time") or 0.0))


def _change_events(case: Case, service: str) -> list[tuple[float, str, dict[str, Any]]]:
    """Return ``(time, kind, attributes)`` of every deploy and config event of *service* or its
    instances, oldest first."""
    ev = case.events
    if ev.empty:
        return []
    rows = ev[ev["kind"].astype(str).isin(["deploy", "config"])]
    ent = rows["entity"].astype(str)
    rows = rows[(ent == service) | ent.str.startswith(service + "-")].sort_values("time", kind="stable")
    return [(float(t), str(k), _attrs(a)) for t, k, a in zip(rows["time"], rows["kind"], rows["attributes"], strict=True)]


def _attrs(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value:
        try:
            doc = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return doc if isinstance(doc, dict) else {}
    return {}


def _rollback_pre(case: Case, t: Target) -> str | None:
    return _is_workload(case, t) or (None if _deploys(case, t.service) else f"no deploy or config change to {t.service} is on record")


def _rollback_params(case: Case, t: Target) -> dict[str, Any]:
    last = _deploys(case, t.service)[0]
    return {
        "service": t.service,
        "change": last.get("id"),
        "change_kind": last.get("kind"),
        "change_time": last.get("time"),
        "from_revision": last.get("revision"),
        "to_revision": last.get("previous_revision"),
    }


def _rollback_inverse(t: Target, p: Mapping[str, Any]) -> str:
    rev = p.get("from_revision")
    return f"roll {t.service} forward to revision {rev}" if rev else f"roll {t.service} forward to the revision rolled back"


def _flags(case: Case, t: Target) -> list[tuple[str, float | None]]:
    """Return ``(flag, switched on at)`` for every feature flag of *t*'s service that is on now:
    flags an event switched on (newest first, the change nearest the incident leading), then the
    flags the topology declares (time ``None``). A flag whose latest event switched it off (aisre's
    own toggle included) is left out."""
    state: dict[str, tuple[bool, float]] = {}
    for time, _kind, a in _change_events(case, t.service):
        flag = a.get("flag")
        if flag:
            state[str(flag)] = (a.get("enabled") is not False, time)
    flags = sorted(((f, when) for f, (on, when) in state.items() if on), key=lambda x: -x[1])
    out: list[tuple[str, float | None]] = list(flags)
    declared = t.attrs.get("flags") if t.attrs else None
    if isinstance(declared, (list, tuple)):
        for f in dict.fromkeys(str(x) for x in declared):
            if f not in state:
                out.append((f, None))
    return out


def _flag_pre(case: Case, t: Target) -> str | None:
    return None if _flags(case, t) else f"no feature flag of {t.service} is on (none switched on, none declared)"


def _flag_params(case: Case, t: Target) -> dict[str, Any]:
    flag, when = _flags(case, t)[0]
    params: dict[str, Any] = {"service": t.service, "flag": flag, "enabled": False}
    if when is not None:
        params["flag_changed_at"] = when
    return params


def _restart_pre(case: Case, t: Target) -> str | None:
    return _is_workload(case, t)


def _restart_params(case: Case, t: Target) -> dict[str, Any]:
    return {"service": t.service, "instance": t.instance, "rolling": t.instance is None}


def _shift_pre(case: Case, t: Target) -> str | None:
    if t.attrs and t.attrs.get("failover"):
        return None
    if t.instance is not None and t.replicas > 1:
        return None
    if t.instance is None:
        return f"no failover is declared for {t.service} and no single instance is suspected"
    return f"{t.service} has no other replica to take the traffic of {t.instance}"


def _shift_inverse(t: Target, p: Mapping[str, Any]) -> str:
    if t.instance is not None and p.get("away_from") == t.instance:
        return f"put {t.instance} back in the load balancer"
    return f"shift traffic back to {p.get('away_from')}"


def _shift_params(case: Case, t: Target) -> dict[str, Any]:
    if t.instance is not None and t.replicas > 1:
        return {"service": t.service, "away_from": t.instance, "to": "the other replicas", "percent": 100}
    return {"service": t.service, "away_from": t.service, "to": str(t.attrs.get("failover")), "percent": 100}


def _rate_pre(case: Case, t: Target) -> str | None:
    if case.topology is None or t.service not in case.topology:
        return f"{t.service} is not in the topology, so its callers are unknown"
    if not case.topology.callers(t.service):
        return f"nothing calls {t.service}, so there is no inbound traffic to limit"
    return _is_workload(case, t)


_RATE_METRIC = re.compile(r"(?:^|_)(?:rps|qps|requests?|request_rate|throughput)(?:$|_)", re.IGNORECASE)


def _observed_rps(case: Case, service: str) -> float | None:
    """Return the service's median request rate in the case, when a rate metric is there."""
    m = case.metrics
    if m.empty:
        return None
    rows = m[(m["entity"].astype(str) == service) & m["metric"].astype(str).str.contains(_RATE_METRIC)]
    if rows.empty:
        return None
    value = float(rows["value"].median())
    return value if math.isfinite(value) and value > 0 else None


def _rate_params(case: Case, t: Target) -> dict[str, Any]:
    fraction = 0.8
    rps = _observed_rps(case, t.service)
    return {
        "service": t.service,
        "fraction": fraction,
        "rps": max(1, int(rps * fraction)) if rps is not None else None,
        "callers": case.topology.callers(t.service) if case.topology else [],
    }


_BUILTINS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="scale",
        summary="add replicas to a service",
        effect="more capacity: CPU, memory and connections per replica fall, queueing latency drops",
        reversible=True,
        fixes=("cpu", "mem", "pool", "socket", "disk", "delay", "crash", "neighbour"),
        precondition=_is_workload,
        params=_scale_params,
        inverse=lambda t, p: f"scale {t.service} back to {p.get('from_replicas')} replicas",
        scope=lambda t: 0.25,
    ),
    ActionSpec(
        name="rollback",
        summary="roll a service back to the revision before its last deploy or config change",
        effect="the change's fault disappears: errors and latency return to their baseline",
        reversible=True,
        fixes=("deploy", "config", "error"),
        precondition=_rollback_pre,
        params=_rollback_params,
        inverse=_rollback_inverse,
    ),
    ActionSpec(
        name="restart",
        summary="restart one instance, or the service's instances one by one",
        effect="process state is cleared: leaked memory, exhausted pools and stuck sockets are freed, a crashed process comes back",
        reversible=False,
        fixes=("crash", "mem", "pool", "socket", "cpu", "disk", "neighbour"),
        precondition=_restart_pre,
        params=_restart_params,
        inverse=lambda t, p: None,
        scope=lambda t: 1.0 / t.replicas if t.instance is not None else 0.5,
    ),
    ActionSpec(
        name="toggle_flag",
        summary="switch a feature flag off",
        effect="the code path behind the flag stops running: its errors stop",
        reversible=True,
        fixes=("error", "config", "deploy"),
        precondition=_flag_pre,
        params=_flag_params,
        inverse=lambda t, p: f"switch flag {p.get('flag')} of {t.service} back on",
        scope=lambda t: 0.5,
    ),
    ActionSpec(
        name="shift_traffic",
        summary="shift or drain traffic away from an instance or to a failover",
        effect="requests stop reaching the degraded instance: its latency and losses leave the callers' path",
        reversible=True,
        fixes=("delay", "loss", "neighbour", "crash", "error"),
        precondition=_shift_pre,
        params=_shift_params,
        inverse=_shift_inverse,
        scope=lambda t: 1.0 / t.replicas if t.instance is not None else 1.0,
    ),
    ActionSpec(
        name="rate_limit",
        summary="limit the requests a service admits to a share of its current load",
        effect="load on the service falls to what it can serve: saturation and queueing ease, excess requests are shed",
        reversible=True,
        fixes=("cpu", "pool", "socket", "mem"),
        precondition=_rate_pre,
        params=_rate_params,
        inverse=lambda t, p: f"remove the rate limit on {t.service}",
    ),
)

_REGISTRY: dict[str, ActionSpec | str] = {spec.name: spec for spec in _BUILTINS}


def adds_capacity_only(action: Action) -> bool:
    """Return whether *action* only adds capacity (a scale-up): it cannot make a service worse,
    so SLIs that worsen after it are the incident growing, and undoing it would take away
    capacity when it is needed most."""
    p = action.params or {}
    try:
        return action.name == "scale" and float(p["replicas"]) > float(p["from_replicas"])
    except (KeyError, TypeError, ValueError):
        return False


def inverse_action(action: Action) -> Action | None:
    """Return the executable :class:`Action` that undoes *action*, or ``None`` when there is none
    an executor can carry out (a restart). The inverse acts on the same target with the same
    blast radius; its params say which action it reverts (``reverts``): a scale back, a rate
    limit lifted (``remove``), a flag switched back, a roll forward (``roll_forward``), a drained
    instance put back in the load balancer or a host uncordoned (``restore``)."""
    p = dict(action.params or {})
    svc = str(p.get("service") or action.target)
    keep = {k: p[k] for k in ("affected", "blast_radius_known", "tier") if k in p}
    params: dict[str, Any]
    match action.name:
        case "scale":
            if p.get("from_replicas") is None or p.get("replicas") is None:
                return None
            params = {"service": svc, "from_replicas": p["replicas"], "replicas": p["from_replicas"]}
            words = f"scale {svc} to {p['replicas']} replicas again"
        case "rate_limit":
            params = {"service": svc, "remove": True, "rps": NO_LIMIT_RPS}
            words = f"rate-limit {svc} again"
        case "toggle_flag":
            if not p.get("flag"):
                return None
            params = {"service": svc, "flag": p["flag"], "enabled": not bool(p.get("enabled"))}
            words = f"switch flag {p['flag']} of {svc} {'on' if p.get('enabled') else 'off'} again"
        case "rollback":
            params = {"service": svc, "change": p.get("change"), "change_kind": p.get("change_kind"),
                      "from_revision": p.get("to_revision"), "to_revision": p.get("from_revision"), "roll_forward": True}  # fmt: skip
            words = f"roll {svc} back again"
        case "shift_traffic":
            if not p.get("away_from"):
                return None
            params = {"service": svc, "restore": p["away_from"], "percent": 0}
            words = f"take {p['away_from']} out of the load balancer again"
        case _:
            return None
    params.update(keep)
    params["reverts"] = action.name
    return Action(
        name=action.name,
        target=action.target,
        params=params,
        inverse=words,
        reversible=True,
        blast_radius=action.blast_radius,
        expected_effect=f"the state before {action.name} on {action.target} comes back",
    )


def register_action(spec: ActionSpec | str, name: str | None = None) -> None:
    """Register *spec* (or a ``module:attr`` string naming one) under *name* (default its own).

    Raises:
        UsageError: when a string spec is given without a name.
    """
    if isinstance(spec, str):
        if name is None:
            raise UsageError("register_action needs a name for a 'module:attr' spec")
        _REGISTRY[name] = spec
    else:
        _REGISTRY[name or spec.name] = spec


def _load_entry_points() -> None:
    for ep in entry_points(group=ACTION_GROUP):
        _REGISTRY.setdefault(ep.name, ep.value)


def available_actions() -> list[str]:
    """Return the names of every registered action (built-ins and entry points), sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_action(name: str) -> ActionSpec:
    """Return the :class:`ActionSpec` registered as *name*.

    Raises:
        UsageError: for an unknown name or an entry point that does not load to an ActionSpec.
    """
    _load_entry_points()
    spec = _REGISTRY.get(name)
    if spec is None:
        raise UsageError(f"unknown action {name!r}; known: {', '.join(available_actions())}")
    if isinstance(spec, str):
        module, _, attr = spec.partition(":")
        try:
            obj = getattr(import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"action {name!r} ({spec}) cannot be loaded: {exc}") from exc
        spec = obj() if callable(obj) and not isinstance(obj, ActionSpec) else obj
        if not isinstance(spec, ActionSpec):
            raise UsageError(f"action {name!r} does not load to an ActionSpec")
        _REGISTRY[name] = spec
    return spec
