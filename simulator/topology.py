"""Simulator topologies: the built-in systems, a YAML/JSON format for your own, ``random:N``.

A :class:`SimTopology` is richer than :class:`aisre.case.Topology`: besides the graph it says
what every endpoint of every service does (CPU work, the calls it makes, timeouts, retries,
connection pools), how many replicas run where, and their capacity. The format, field by field,
is in ``docs/faults.md``; in short::

    name: shop
    hosts: [{name: node-1, cores: 8}]
    services:
      - name: frontend
        tier: critical
        replicas: 2
        endpoints:
          - name: home
            weight: 10          # share of the open-loop entry traffic
            work: 0.004         # mean CPU seconds per request
            calls:
              - {service: cart, endpoint: GetCart, retries: 1}
              - parallel: [{service: ads}, {service: recs, optional: true}]
      - name: cart
        endpoints: [{name: GetCart, calls: [{service: cart-db, pool: 8}]}]
      - {name: cart-db, kind: database, endpoints: [{name: get}]}

Every problem is a :class:`aisre.errors.SpecError` naming the field, e.g.
``services[2].endpoints[0].calls[1].service``.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aisre.case import TIERS, Topology
from aisre.errors import SpecError

__all__ = [
    "BUILTIN_TOPOLOGIES",
    "Autoscale",
    "Call",
    "Endpoint",
    "Host",
    "Service",
    "SimTopology",
    "load_topology",
    "random_topology",
]

BUILTIN_TOPOLOGIES = ("online-boutique", "sock-shop", "train-ticket")
"""Names of the topologies shipped in ``simulator/topologies/``."""

SERVICE_KINDS = ("service", "database", "cache", "queue")
"""Kinds a simulated service may have (the Topology node kind)."""

CALL_EDGES = ("calls", "reads", "writes", "publishes")
"""Edge kinds a call may be drawn as in the Topology."""

RANDOM_MAX = 20_000
"""Largest ``random:N`` accepted."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Call:
    """One downstream call an endpoint makes: ``count`` times, sequentially, with a timeout.

    ``pool`` is the size of the caller instance's connection pool to the callee (None: no
    pool); ``asynchronous`` calls are fire-and-forget (a message handed to a queue consumer).
    """

    service: str
    endpoint: str
    count: int = 1
    optional: bool = False
    retries: int = 0
    timeout: float = 1.0
    pool: int | None = None
    asynchronous: bool = False
    edge: str = "calls"


@dataclass(frozen=True)
class Endpoint:
    """An endpoint: mean CPU work in seconds, entry weight, timeout, SLO and its call tree.

    ``calls`` holds :class:`Call` steps run in order; a tuple of calls is a parallel group.
    """

    name: str
    work: float = 0.002
    weight: float = 0.0
    timeout: float = 1.0
    slo: float = 0.5
    operation: str = ""
    calls: tuple[Call | tuple[Call, ...], ...] = ()

    def flat_calls(self) -> list[Call]:
        """Return every call of the tree's first level, parallel groups flattened."""
        out: list[Call] = []
        for step in self.calls:
            out.extend(step if isinstance(step, tuple) else (step,))
        return out


@dataclass(frozen=True)
class Autoscale:
    """A HorizontalPodAutoscaler: replicas between ``min`` and ``max`` at ``target_cpu`` use."""

    min: int
    max: int
    target_cpu: float = 0.7


@dataclass(frozen=True)
class Service:
    """A deployable unit (a service, database, cache or queue) and its instances' resources."""

    name: str
    kind: str = "service"
    tier: str = "standard"
    owner: str | None = None
    replicas: int = 1
    capacity: int = 64
    cores: float = 1.0
    mem_mb: float = 128.0
    mem_limit_mb: float = 512.0
    disk_kb: float = 0.0
    sockets: int = 12
    socket_limit: int = 1024
    hosts: tuple[str, ...] = ()
    autoscale: Autoscale | None = None
    version: str = "v1.0.0"
    endpoints: tuple[Endpoint, ...] = ()

    def endpoint(self, name: str) -> Endpoint:
        """Return endpoint *name*.

        Raises:
            SpecError: when the service has no such endpoint.
        """
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        known = ", ".join(e.name for e in self.endpoints)
        raise SpecError(f"service {self.name!r} has no endpoint {name!r}; known: {known}", field="endpoint")

    @property
    def max_replicas(self) -> int:
        """The most instances this service can ever run (autoscaler maximum or replicas)."""
        return max(self.replicas, self.autoscale.max if self.autoscale else 0)


@dataclass(frozen=True)
class Host:
    """A node instances run on; ``cores`` are shared by everything placed there."""

    name: str
    cores: float = 8.0


@dataclass(frozen=True)
class SimTopology:
    """A validated simulator topology: services with endpoints and call trees, and hosts."""

    name: str
    services: tuple[Service, ...]
    hosts: tuple[Host, ...] = ()
    description: str = ""
    source: str = ""
    workload: Mapping[str, float] = field(default_factory=dict)

    def service(self, name: str) -> Service:
        """Return service *name*.

        Raises:
            SpecError: when there is no such service.
        """
        for s in self.services:
            if s.name == name:
                return s
        raise SpecError(f"unknown service {name!r} in topology {self.name!r}", field="service")

    def service_names(self) -> list[str]:
        """Return service names in declaration order."""
        return [s.name for s in self.services]

    def entry_endpoints(self) -> list[tuple[str, str, float]]:
        """Return ``(service, endpoint, weight)`` for every endpoint taking entry traffic."""
        return [(s.name, e.name, e.weight) for s in self.services for e in s.endpoints if e.weight > 0]

    def placement(self) -> list[tuple[str, str, str | None]]:
        """Return ``(instance, service, host)`` for every possible instance (up to max replicas).

        Instances are named ``<service>-<i>``; they go round-robin over the service's hosts,
        or over all hosts in order when the service names none.
        """
        out: list[tuple[str, str, str | None]] = []
        all_hosts = [h.name for h in self.hosts]
        cursor = 0
        for s in self.services:
            pool = list(s.hosts) or all_hosts
            for i in range(s.max_replicas):
                host = None
                if pool:
                    host = pool[(i if s.hosts else cursor) % len(pool)]
                    if not s.hosts:
                        cursor += 1
                out.append((f"{s.name}-{i}", s.name, host))
        return out

    def to_topology(self) -> Topology:
        """Return the :class:`aisre.case.Topology` of this system (source ``simulator``).

        Services keep their kind, tier, replicas and owner. Every possible instance is an
        ``instance`` node with a ``service`` attribute (``initial`` is False for instances only
        the autoscaler starts) and a ``runs_on`` edge to its host; every call becomes an edge of
        its kind (calls, reads, writes, publishes) from caller to callee.
        """
        topo = Topology(source="simulator")
        for h in self.hosts:
            topo.add_node(h.name, "host", cores=h.cores)
        for s in self.services:
            topo.add_node(s.name, s.kind, tier=s.tier, replicas=s.replicas, owner=s.owner, version=s.version)
        by_name = {s.name: s for s in self.services}
        for inst, svc, host in self.placement():
            s = by_name[svc]
            i = int(inst.rsplit("-", 1)[1])
            topo.add_node(inst, "instance", tier=s.tier, replicas=1, owner=s.owner, service=svc, initial=i < s.replicas)
            if host is not None:
                topo.add_edge(inst, host, "runs_on")
        for s in self.services:
            for ep in s.endpoints:
                for c in _walk_calls(ep.calls):
                    topo.add_edge(s.name, c.service, c.edge)
        return topo


def _walk_calls(steps: Sequence[Call | tuple[Call, ...]]) -> list[Call]:
    out: list[Call] = []
    for step in steps:
        out.extend(step if isinstance(step, tuple) else (step,))
    return out


# --------------------------------------------------------------------------- loading


def load_topology(name_or_path: str | Path | Mapping[str, Any] | SimTopology) -> SimTopology:
    """Return the topology named (``online-boutique``, ``sock-shop``, ``train-ticket``,
    ``random:N``), read from a YAML/JSON file, or built from a mapping.

    Raises:
        SpecError: for an unknown name, an unreadable file or an invalid spec, naming the field.
    """
    if isinstance(name_or_path, SimTopology):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return parse_topology(name_or_path)
    text = str(name_or_path)
    if text.startswith("random:"):
        raw = text.split(":", 1)[1]
        try:
            n = int(raw)
        except ValueError:
            raise SpecError(f"random:N needs an integer N, got {raw!r}", field="topology") from None
        return random_topology(n)
    if text in BUILTIN_TOPOLOGIES:
        ref = resources.files("aisre.simulator").joinpath("topologies", f"{text}.yaml")
        return parse_topology(yaml.load(ref.read_text(), Loader=_Loader), path=f"<builtin {text}>")
    path = Path(text)
    if not path.is_file():
        known = ", ".join((*BUILTIN_TOPOLOGIES, "random:N"))
        raise SpecError(f"no topology {text!r}: not a built-in ({known}) nor a file", field="topology")
    try:
        raw_text = path.read_text()
        doc = json.loads(raw_text) if path.suffix.lower() == ".json" else yaml.load(raw_text, Loader=_Loader)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read topology: {str(exc).splitlines()[0]}", field="topology", path=str(path)) from exc
    return parse_topology(doc, path=str(path))


def parse_topology(doc: Any, *, path: str | None = None) -> SimTopology:
    """Validate a topology document (the parsed YAML/JSON) and return the :class:`SimTopology`.

    Raises:
        SpecError: naming the field for unknown services or endpoints, endpoint call cycles,
            negative or non-numeric quantities, duplicate names or unknown hosts.
    """
    p = _Parser(path)
    return p.topology(doc)


class _Parser:
    def __init__(self, path: str | None) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> SpecError:
        return SpecError(message, field=where, path=self.path)

    # scalar helpers
    def number(self, d: Mapping[str, Any], key: str, where: str, default: float, *, positive: bool = False) -> float:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise self.fail(f"{where}.{key}", f"must be a number, got {v!r}")
        if v < 0 or (positive and v == 0):
            raise self.fail(f"{where}.{key}", f"must be {'positive' if positive else 'non-negative'}, got {v!r}")
        return float(v)

    def integer(self, d: Mapping[str, Any], key: str, where: str, default: int, *, minimum: int = 0) -> int:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            else:
                raise self.fail(f"{where}.{key}", f"must be an integer, got {v!r}")
        if v < minimum:
            raise self.fail(f"{where}.{key}", f"must be at least {minimum}, got {v!r}")
        return int(v)

    def name(self, d: Mapping[str, Any], where: str) -> str:
        v = d.get("name")
        if not isinstance(v, str) or not _NAME.match(v) or "/" in v:
            raise self.fail(f"{where}.name", f"needs a name of letters, digits, '-', '_' or '.', got {v!r}")
        return v

    def mapping(self, v: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            raise self.fail(where, f"must be a mapping, got {type(v).__name__}")
        return v

    def seq(self, d: Mapping[str, Any], key: str, where: str) -> list[Any]:
        v = d.get(key, [])
        if v is None:
            return []
        if not isinstance(v, list):
            raise self.fail(f"{where}.{key}" if where else key, f"must be a list, got {type(v).__name__}")
        return v

    def topology(self, doc: Any) -> SimTopology:
        doc = self.mapping(doc, "topology")
        name = doc.get("name", "custom")
        if not isinstance(name, str) or not name:
            raise self.fail("name", f"must be a non-empty string, got {name!r}")
        hosts: list[Host] = []
        seen_hosts: set[str] = set()
        for i, h in enumerate(self.seq(doc, "hosts", "")):
            where = f"hosts[{i}]"
            h = self.mapping(h, where)
            hname = self.name(h, where)
            if hname in seen_hosts:
                raise self.fail(f"{where}.name", f"duplicate host name {hname!r}")
            seen_hosts.add(hname)
            hosts.append(Host(hname, self.number(h, "cores", where, 8.0, positive=True)))
        raw_services = self.seq(doc, "services", "")
        if not raw_services:
            raise self.fail("services", "a topology needs at least one service")
        # first pass: names and kinds, so calls can be checked against them
        names: dict[str, int] = {}
        for i, s in enumerate(raw_services):
            s = self.mapping(s, f"services[{i}]")
            sname = self.name(s, f"services[{i}]")
            if sname in names:
                raise self.fail(f"services[{i}].name", f"duplicate service name {sname!r} (first at services[{names[sname]}])")
            if sname in seen_hosts:
                raise self.fail(f"services[{i}].name", f"service name {sname!r} is also a host name")
            names[sname] = i
        kinds = {
            str(s.get("name")): str(s.get("kind", "service")) for s in raw_services if isinstance(s, Mapping)
        }
        endpoint_names: dict[str, list[str]] = {}
        for i, s in enumerate(raw_services):
            eps = []
            for j, e in enumerate(self.seq(s, "endpoints", f"services[{i}]")):
                e = self.mapping(e, f"services[{i}].endpoints[{j}]")
                ename = e.get("name")
                if not isinstance(ename, str) or not ename:
                    raise self.fail(f"services[{i}].endpoints[{j}].name", f"needs a non-empty name, got {ename!r}")
                if ename in eps:
                    raise self.fail(f"services[{i}].endpoints[{j}].name", f"duplicate endpoint name {ename!r}")
                eps.append(ename)
            if not eps:
                eps = ["default"]
            endpoint_names[str(s["name"])] = eps
        # instance names must not collide with services or hosts
        services = tuple(
            self.service(s, i, names, kinds, endpoint_names, seen_hosts) for i, s in enumerate(raw_services)
        )
        topo = SimTopology(
            name=name,
            services=services,
            hosts=tuple(hosts),
            description=str(doc.get("description", "")),
            source=self.path or "",
            workload=self.workload(doc.get("workload", {})),
        )
        self.check_instances(topo)
        self.check_cycles(topo)
        if not topo.entry_endpoints():
            raise self.fail("services", "no endpoint takes entry traffic: give at least one endpoint a 'weight' > 0")
        return topo

    def workload(self, w: Any) -> dict[str, float]:
        w = self.mapping(w or {}, "workload")
        out = {}
        for key in ("daily_amplitude", "burst_per_hour", "burst_factor", "burst_seconds"):
            if key in w:
                out[key] = self.number(w, key, "workload", 0.0)
        return out

    def service(
        self,
        s: Mapping[str, Any],
        i: int,
        names: Mapping[str, int],
        kinds: Mapping[str, str],
        endpoint_names: Mapping[str, list[str]],
        hosts: set[str],
    ) -> Service:
        where = f"services[{i}]"
        sname = str(s["name"])
        kind = s.get("kind", "service")
        if kind not in SERVICE_KINDS:
            raise self.fail(f"{where}.kind", f"unknown kind {kind!r}; known: {', '.join(SERVICE_KINDS)}")
        tier = s.get("tier", "standard")
        if tier not in TIERS:
            raise self.fail(f"{where}.tier", f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
        is_store = kind != "service"
        replicas = self.integer(s, "replicas", where, 1, minimum=1)
        mem_mb = self.number(s, "mem_mb", where, 256.0 if is_store else 128.0, positive=True)
        mem_limit = self.number(s, "mem_limit_mb", where, max(512.0, mem_mb * 2), positive=True)
        if mem_limit <= mem_mb:
            raise self.fail(f"{where}.mem_limit_mb", f"must exceed mem_mb ({mem_mb}), got {mem_limit}")
        sockets = self.integer(s, "sockets", where, 12)
        socket_limit = self.integer(s, "socket_limit", where, 1024, minimum=1)
        if socket_limit <= sockets:
            raise self.fail(f"{where}.socket_limit", f"must exceed sockets ({sockets}), got {socket_limit}")
        host_list = self.seq(s, "hosts", where)
        for k, h in enumerate(host_list):
            if h not in hosts:
                raise self.fail(f"{where}.hosts[{k}]", f"unknown host {h!r}")
        autoscale = None
        if s.get("autoscale") is not None:
            a = self.mapping(s["autoscale"], f"{where}.autoscale")
            lo = self.integer(a, "min", f"{where}.autoscale", replicas, minimum=1)
            hi = self.integer(a, "max", f"{where}.autoscale", max(lo, replicas), minimum=1)
            if hi < lo or not lo <= replicas <= hi:
                raise self.fail(f"{where}.autoscale.max", f"need min <= replicas <= max, got {lo} <= {replicas} <= {hi}")
            target = self.number(a, "target_cpu", f"{where}.autoscale", 0.7, positive=True)
            if target > 1:
                raise self.fail(f"{where}.autoscale.target_cpu", f"is a fraction of the CPU limit (0..1], got {target}")
            autoscale = Autoscale(lo, hi, target)
        raw_eps = self.seq(s, "endpoints", where) or [{"name": "default"}]
        endpoints = tuple(
            self.endpoint(e, f"{where}.endpoints[{j}]", names, kinds, endpoint_names, is_store)
            for j, e in enumerate(raw_eps)
        )
        owner = s.get("owner")
        return Service(
            name=sname,
            kind=kind,
            tier=tier,
            owner=None if owner is None else str(owner),
            replicas=replicas,
            capacity=self.integer(s, "capacity", where, 64, minimum=1),
            cores=self.number(s, "cores", where, 1.0, positive=True),
            mem_mb=mem_mb,
            mem_limit_mb=mem_limit,
            disk_kb=self.number(s, "disk_kb", where, 16.0 if is_store else 0.0),
            sockets=sockets,
            socket_limit=socket_limit,
            hosts=tuple(host_list),
            autoscale=autoscale,
            version=str(s.get("version", "v1.0.0")),
            endpoints=endpoints,
        )

    def endpoint(
        self,
        e: Mapping[str, Any],
        where: str,
        names: Mapping[str, int],
        kinds: Mapping[str, str],
        endpoint_names: Mapping[str, list[str]],
        is_store: bool,
    ) -> Endpoint:
        steps: list[Call | tuple[Call, ...]] = []
        for k, c in enumerate(self.seq(e, "calls", where)):
            cw = f"{where}.calls[{k}]"
            c = self.mapping(c, cw)
            if "parallel" in c:
                group = self.seq(c, "parallel", cw)
                if not group:
                    raise self.fail(f"{cw}.parallel", "a parallel group needs at least one call")
                steps.append(
                    tuple(self.call(self.mapping(g, f"{cw}.parallel[{m}]"), f"{cw}.parallel[{m}]", names, kinds, endpoint_names) for m, g in enumerate(group))
                )
            else:
                steps.append(self.call(c, cw, names, kinds, endpoint_names))
        timeout = self.number(e, "timeout", where, 1.0, positive=True)
        return Endpoint(
            name=str(e["name"]),
            work=self.number(e, "work", where, 0.001 if is_store else 0.002, positive=True),
            weight=self.number(e, "weight", where, 0.0),
            timeout=timeout,
            slo=self.number(e, "slo", where, min(0.5, timeout), positive=True),
            operation=str(e.get("operation", e["name"])),
            calls=tuple(steps),
        )

    def call(
        self,
        c: Mapping[str, Any],
        where: str,
        names: Mapping[str, int],
        kinds: Mapping[str, str],
        endpoint_names: Mapping[str, list[str]],
    ) -> Call:
        callee = c.get("service")
        if not isinstance(callee, str) or callee not in names:
            raise self.fail(f"{where}.service", f"unknown service {callee!r}")
        eps = endpoint_names[callee]
        ep = c.get("endpoint", eps[0])
        if ep not in eps:
            raise self.fail(f"{where}.endpoint", f"service {callee!r} has no endpoint {ep!r}; known: {', '.join(eps)}")
        kind = kinds.get(callee, "service")
        default_edge = {"queue": "publishes", "database": "calls", "cache": "calls"}.get(kind, "calls")
        edge = c.get("edge", default_edge)
        if edge not in CALL_EDGES:
            raise self.fail(f"{where}.edge", f"unknown edge kind {edge!r}; known: {', '.join(CALL_EDGES)}")
        pool = c.get("pool", 16 if kind in ("database", "cache") else None)
        if pool is not None:
            pool = self.integer({"pool": pool}, "pool", where, 0, minimum=1)
        return Call(
            service=callee,
            endpoint=str(ep),
            count=self.integer(c, "count", where, 1, minimum=1),
            optional=bool(c.get("optional", False)),
            retries=self.integer(c, "retries", where, 0),
            timeout=self.number(c, "timeout", where, 1.0, positive=True),
            pool=pool,
            asynchronous=bool(c.get("async", False)),
            edge=edge,
        )

    def check_instances(self, topo: SimTopology) -> None:
        taken = set(topo.service_names()) | {h.name for h in topo.hosts}
        for inst, svc, _ in topo.placement():
            if inst in taken:
                i = topo.service_names().index(svc)
                raise self.fail(f"services[{i}].name", f"instance name {inst!r} of {svc!r} collides with a service or host")

    def check_cycles(self, topo: SimTopology) -> None:
        # Services may call each other both ways; a request can only cycle if the endpoints do.
        graph: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for s in topo.services:
            for e in s.endpoints:
                graph[(s.name, e.name)] = [(c.service, c.endpoint) for c in e.flat_calls()]
        state: dict[tuple[str, str], int] = {}
        for root in graph:
            if state.get(root):
                continue
            stack: list[tuple[tuple[str, str], int]] = [(root, 0)]
            path: list[tuple[str, str]] = []
            while stack:
                node, idx = stack.pop()
                if idx == 0:
                    state[node] = 1
                    path.append(node)
                children = graph.get(node, [])
                if idx < len(children):
                    stack.append((node, idx + 1))
                    child = children[idx]
                    if state.get(child) == 1:
                        cycle = path[path.index(child):] + [child]
                        shown = " -> ".join(f"{a}/{b}" for a, b in cycle)
                        i = topo.service_names().index(node[0])
                        raise self.fail(f"services[{i}].endpoints.calls", f"call cycle {shown}")
                    if not state.get(child):
                        stack.append((child, 0))
                else:
                    state[node] = 2
                    path.pop()


# --------------------------------------------------------------------------- random:N


def random_topology(n: int, *, seed: int | None = None) -> SimTopology:
    """Return a layered random topology of *n* services (``random:N``), the same for the same
    *n* (and *seed*, default *n*).

    Layer 0 holds API gateways with many routes (so one request touches ~10 services, as in a
    large real system); each deeper layer is about twice as wide; every service is called from
    the layer above, a few calls skip a layer, and the deepest layer includes databases.

    Raises:
        SpecError: when *n* is below 2 or above :data:`RANDOM_MAX`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or n > RANDOM_MAX:
        raise SpecError(f"random:N needs 2 <= N <= {RANDOM_MAX}, got {n!r}", field="topology")
    rng = np.random.default_rng(n if seed is None else seed)
    gateways = max(1, n // 100)
    rest = n - gateways
    depth = 1 if rest <= 2 else max(2, min(7, int(round(math.log(rest, 2.2)))))
    weights = np.array([2.0**k for k in range(depth)])
    sizes = np.maximum(1, np.floor(rest * weights / weights.sum())).astype(int)
    sizes[-1] += rest - sizes.sum()
    while sizes[-1] < 1:  # tiny n: borrow from the widest layer
        j = int(np.argmax(sizes[:-1]))
        sizes[j] -= 1
        sizes[-1] += 1
    layers: list[list[str]] = [[f"gw-{i}" for i in range(gateways)]]
    count = 0
    for k, size in enumerate(sizes):
        layers.append([f"svc-{count + i}" for i in range(int(size))])
        count += int(size)
    # endpoints: gateways get routes so trees stay small; others 1-3 endpoints
    routes = max(1, math.ceil(n / 10 / gateways))
    eps: dict[str, list[str]] = {}
    for li, layer in enumerate(layers):
        for s in layer:
            k = routes if li == 0 else int(rng.integers(1, 4))
            eps[s] = [f"route{j}" if li == 0 else f"op{j}" for j in range(k)]
    calls: dict[tuple[str, str], list[tuple[str, str]]] = {(s, e): [] for s in eps for e in eps[s]}
    size: dict[tuple[str, str], int] = {key: 1 for key in calls}
    cap = 30
    # bottom-up so subtree sizes are known when a caller is chosen
    for li in range(len(layers) - 2, -1, -1):
        callers = [(s, e) for s in layers[li] for e in eps[s]]
        heap = [(1, float(rng.random()), i) for i in range(len(callers))]
        heapq.heapify(heap)
        for callee in layers[li + 1]:
            for e in eps[callee]:
                # every endpoint of the callee gets one caller: the smallest tree so far
                _, _, i = heapq.heappop(heap)
                caller = callers[i]
                calls[caller].append((callee, e))
                size[caller] += size[(callee, e)]
                heapq.heappush(heap, (size[caller], float(rng.random()), i))
        # a few extra edges, some skipping a layer, while trees stay under the cap
        deeper = [x for layer in layers[li + 1 : li + 3] for x in layer]
        for caller in callers:
            if rng.random() < 0.35:
                callee = deeper[int(rng.integers(len(deeper)))]
                e = eps[callee][int(rng.integers(len(eps[callee])))]
                if size[caller] + size[(callee, e)] <= cap and (callee, e) not in calls[caller]:
                    calls[caller].append((callee, e))
                    size[caller] += size[(callee, e)]
    last = set(layers[-1])
    services = []
    for li, layer in enumerate(layers):
        for s in layer:
            is_db = s in last and len(layers) > 2 and rng.random() < 0.25
            endpoints = []
            for e in eps[s]:
                cs = tuple(
                    Call(service=c, endpoint=ce, timeout=1.0 if li > 0 else 2.0, retries=1 if rng.random() < 0.2 else 0)
                    for c, ce in calls[(s, e)]
                )
                work = float(rng.lognormal(math.log(0.0015), 0.5))
                endpoints.append(
                    Endpoint(
                        name=e,
                        work=work,
                        weight=float(rng.integers(1, 10)) if li == 0 else 0.0,
                        timeout=3.0 if li == 0 else 1.0,
                        slo=0.5 if li == 0 else 0.25,
                        operation=e,
                        calls=cs,
                    )
                )
            services.append(
                Service(
                    name=s,
                    kind="database" if is_db else "service",
                    tier="critical" if li == 0 else ("standard" if li < 3 else "best-effort"),
                    replicas=2 if li == 0 else int(rng.integers(1, 3)),
                    capacity=64,
                    disk_kb=16.0 if is_db else 0.0,
                    endpoints=tuple(endpoints),
                )
            )
    n_inst = sum(s.replicas for s in services)
    hosts = tuple(Host(f"node-{i}", 16.0) for i in range(max(1, math.ceil(n_inst / 30))))
    return SimTopology(name=f"random-{n}", services=tuple(services), hosts=hosts, description=f"layered random topology of {n} services", source=f"random:{n}")
