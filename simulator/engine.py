"""The discrete-event model (simpy): requests flow through the call graph and faults act on it.

Every entry request is a simpy process walking its endpoint's call tree depth first. At each
service it is routed round-robin to a ready instance, waits for one of the instance's
``capacity`` worker slots (a FIFO queue; the wait ends at the request's deadline), does its CPU
work under processor sharing (the instance's cores split among the requests working at once,
minus what a CPU hog takes), then makes its downstream calls in order, each with its own
timeout, retries with exponential back-off and, where configured, a connection from a bounded
pool. A slot is held for the whole request, so a slow callee backs its callers up: the way
thread-per-request services saturate in production.

Instances crash, are OOM-killed and restart with Kubernetes' back-off; a killed instance fails
its in-flight and queued requests, and the load balancer keeps sending it traffic until its
readiness probe notices (``PROBE_LAG``). An autoscaler adds replicas on CPU. Fault kinds change
instance state at their start and end (see ``docs/faults.md``).

Speed (``benchmarks/bench_simulator.py`` measures it against a bare simpy loop; the events are
the same simpy events, in the same order, as a plain implementation makes): a call to a leaf
service whose instance is up, under no fault and has a free worker is served inside the
caller's frame (:meth:`Engine._serve`'s call loop) instead of in a generator of its own; pooled
calls take their connection inline while one is free; the arrivals and the requests run as
:class:`_Request` processes, whose sleeps (work, back-off, arrival gaps) are timers: the
generator yields the wake-up time and the queue holds the process's bound ``_step``, so a sleep
makes no Timeout object, no callback list and no event-loop bookkeeping (same event ids, same
order); the few other timeouts are simpy ``Timeout`` objects made without the class call;
:class:`_Env` processes events in a tighter loop than simpy's ``step()``; random numbers come
from C-level iterators over pre-drawn buffers; the cyclic garbage collector is paused during a
run (it makes no reference cycles); a finished attempt is packed with :mod:`struct` as it is
recorded, and ``result()`` orders the rows in numpy. The hot path reads simpy's clock as
``env._now``.

Determinism: simpy orders simultaneous events by insertion, and every random number comes from
buffers refilled from the one ``numpy.random.Generator`` passed in, consumed in event order; no
global random state is touched.

The model records one row per request attempt at a service (:data:`RECORD_FIELDS`) plus
lifecycle events; :mod:`.telemetry` turns them into metrics, logs, spans, events and alerts.
"""

from __future__ import annotations

import gc
import math
import struct
from collections import deque
from dataclasses import dataclass, field
from heapq import heappop, heappush
from itertools import chain, count
from types import MethodType as _MethodType
from typing import Any

import numpy as np
import simpy
from numpy.lib.recfunctions import structured_to_unstructured
from simpy.events import NORMAL, URGENT, Event, Process, Timeout

from .faults import ResolvedFault
from .topology import Call, SimTopology
from .workload import Arrivals

__all__ = ["CAUSES", "RECORD_FIELDS", "Engine", "EngineResult", "run_engine"]

OK, TIMEOUT, REFUSED, RESET, EXCEPTION, BAD_VERSION, CONFIG, POOL, SOCKET, UPSTREAM, RATE_LIMITED = range(11)
CAUSES = (
    "ok", "timeout", "refused", "reset", "exception", "bad_version",
    "config", "pool_timeout", "socket_exhausted", "upstream", "rate_limited",
)  # fmt: skip
"""Outcome codes of a request attempt, indexed by the ``status`` field of a record."""

RETRYABLE = frozenset({TIMEOUT, REFUSED, RESET, SOCKET})
"""Outcomes a client retries (transport failures; application errors are not retried)."""

RECORD_FIELDS = (
    "start", "end", "trace", "parent", "service", "instance", "endpoint", "status",
    "work", "served", "caller", "attempt", "wait", "detail",
)  # fmt: skip
"""Columns of the engine's record array: one row per request attempt at a service.

``end`` is when the server finished (for a timed-out attempt, later than the caller gave up);
``served`` is 0 when the attempt never reached a worker (refused, socket failure); ``work`` is
the CPU seconds it used; ``detail`` the service index of the failing callee for ``upstream``."""

PROBE_LAG = 2.0
"""Seconds before the load balancer stops routing to a dead instance (readiness probe)."""

READY_DELAY = 3.0
"""Seconds from a container start to the instance taking traffic."""

BACKOFF = (1.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0)
"""Kubernetes CrashLoopBackOff delays before the n-th restart, in seconds."""

NET_RTT = 0.0005
"""Seconds of network round trip added to every call."""

RESTART_DELAY = 2.0
"""Seconds from a pod's deletion to its replacement's container start (a remediation restart)."""

AUTOSCALE_PERIOD = 15.0
"""Seconds between autoscaler evaluations (the HPA sync period)."""

_RECORD_TYPES = "ddqqqqqqdqqqdq"  # per RECORD_FIELDS: d a float, q an integer
# a finished attempt is packed as it is recorded: its id, then RECORD_FIELDS; native order,
# standard sizes, so no padding and the numpy dtype below reads the same bytes
_RECORD = struct.Struct("=q" + _RECORD_TYPES)
_pack = _RECORD.pack
FINISHED_DTYPE = np.dtype([("id", "=i8")] + [(n, "=f8" if t == "d" else "=i8") for n, t in zip(RECORD_FIELDS, _RECORD_TYPES)])
"""Row type of :meth:`Engine.finished`: the record id, then :data:`RECORD_FIELDS`."""

_BUF = 1 << 15
_LEAF, _CALL, _ASYNC, _PARALLEL = range(4)  # kinds of entries in Engine.ep_calls
_NO_CONNECTION = -1  # _pooled's own failure to get a connection, unlike a callee's POOL status


@dataclass
class EngineResult:
    """What a run produced: the record array, lifecycle events and logs, and state intervals.

    ``ids`` holds each record's id (the ``parent`` field refers to ids); requests still in
    flight when the run ends have no record, so ids have gaps.
    """

    records: np.ndarray
    ids: np.ndarray
    events: list[tuple[float, str, str, str, str, dict[str, Any]]]
    logs: list[tuple[float, str, str, str, str, str | None]]
    down: list[tuple[int, float, float]]
    leaks: list[tuple[int, float, float, float]]
    sockets: list[tuple[int, float, float, float]]
    hogs: list[tuple[str, int, float, float, float]]
    changes: list[dict[str, Any]]
    never_ran: set[int]
    sim_events: int
    faults: list[ResolvedFault] = field(default_factory=list)


class _Sem:
    """A counting semaphore with a FIFO of waiting simpy events (worker slots, pool conns)."""

    __slots__ = ("base", "busy", "cap", "waiters")

    def __init__(self, cap: int) -> None:
        self.base = cap
        self.cap = cap
        self.busy = 0
        self.waiters: deque[simpy.Event] = deque()


_new = object.__new__
_push = heappush


def _draws(draw: Any, *args: Any) -> Any:
    """Yield ``draw(*args)`` as a list, again and again (a random stream's buffers)."""
    while True:
        yield draw(*args).tolist()


class _Sleep(Timeout):
    """A simpy Timeout made by :meth:`Engine._sleep` (and inlined copies of it) without the
    class call: only the attributes that processing it reads are set (callbacks, value, ok)."""

    def _desc(self) -> str:
        return "Timeout()"


class _Env(simpy.Environment):
    """simpy's Environment with a tighter loop for ``run(until=number)``: the same events in the
    same order with the same effects (the stop event included, rescheduled as simpy does), minus
    a method call and a few lookups per event; any other ``until`` goes to simpy's own loop.

    Its queue also holds request timers (see :class:`_Request`): a request's bound ``_step``
    method in place of an event, scheduled like a Timeout (normal priority, the next event id)
    and processed by calling it, in both loops (:meth:`step` is simpy's plus that)."""

    def step(self) -> None:
        if self._queue and self._queue[0][3].__class__ is _MethodType:
            now, _, _, wake = heappop(self._queue)
            self._now = now
            wake(None)
            return
        super().step()

    def run(self, until: Any = None) -> Any:
        if until is None or isinstance(until, Event):
            return super().run(until)
        at = until if isinstance(until, int) else float(until)
        if at <= self._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = Event(self)
        stop._ok = True
        stop._value = None
        self.schedule(stop, simpy.events.URGENT, at - self._now)
        queue = self._queue
        pop = heappop
        while True:
            now, _, _, event = pop(queue)
            self._now = now
            if event.__class__ is _MethodType:  # a request's timer
                event(None)
                continue
            if event is stop:
                # simpy's StopSimulation path: the stop event goes back in the queue at priority
                # -1 with no callbacks left, to be processed first by the next run
                stop.callbacks = []
                self.schedule(stop, -1)
                return None
            callbacks = event.callbacks
            event.callbacks = None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc


class _Request(Process):
    """A process of the request path (the arrivals, each request, each parallel or asynchronous
    call): simpy's Process, stepped by shorter code while the events it waits on succeed (a
    request never waits on a failing one; if it did, simpy's own ``_resume`` takes over). The
    generator sees the same values and the process ends with the same (scheduled) event as
    simpy's.

    Besides events its generator may yield a float: a timer, "resume me at that simulated time"
    with the value None, as ``yield env.timeout(t - now)`` would, scheduled the same way (normal
    priority, the next event id, so events keep their order) but with no Timeout object, no
    callback list and no event loop bookkeeping: the queue holds the bound :meth:`_step`."""

    def _resume(self, event: Event) -> None:
        if not event._ok:
            return Process._resume(self, event)
        return self._step(event._value)

    def _step(self, value: Any) -> None:
        env = self.env
        env._active_proc = self
        send = self._generator.send
        while True:
            try:
                event = send(value)
            except StopIteration as stop:
                self._ok = True
                self._value = stop.value
                _push(env._queue, (env._now, NORMAL, next(env._eid), self))  # env.schedule(self)
                event = None
                break
            except BaseException as e:
                self._ok = False
                e.__traceback__ = e.__traceback__.tb_next
                self._value = e
                _push(env._queue, (env._now, NORMAL, next(env._eid), self))
                event = None
                break
            if event.__class__ is float:
                _push(env._queue, (event, NORMAL, next(env._eid), self._step))
                event = None
                break
            callbacks = event.callbacks
            if callbacks is not None:
                callbacks.append(self._resume)
                break
            if not event._ok:  # already processed and failed: simpy's path throws it in
                self._target = event
                env._active_proc = None
                return Process._resume(self, event)
            value = event._value
        self._target = event
        env._active_proc = None
        return None


def _spawn(env: simpy.Environment, generator: Any) -> _Request:
    """Start *generator* as a :class:`_Request`, as ``env.process()`` starts a Process, without
    the class calls: where simpy schedules an Initialize event (urgent, now), a timer."""
    p = _new(_Request)
    p.env, p.callbacks, p._generator, p._target = env, [], generator, None
    _push(env._queue, (env._now, URGENT, next(env._eid), p._step))
    return p


def _expire(ev: simpy.Event, _: simpy.Event) -> None:
    if not ev.triggered:
        ev.succeed(False)


class Engine:
    """One simulation run over a topology, with faults, driven by pre-drawn arrivals."""

    def __init__(
        self,
        topology: SimTopology,
        faults: list[ResolvedFault],
        arrivals: Arrivals,
        rng: np.random.Generator,
        *,
        duration: float,
    ) -> None:
        self.topo = topology
        self.faults = faults
        self.arrivals = arrivals
        self.rng = rng
        self.duration = float(duration)
        self.env = _Env()
        self._compile()
        # a record id is taken when an attempt starts (ids follow start order); the attempt's
        # row is packed onto ``out`` when it ends (rows follow end order)
        self._next_id = count().__next__
        self._u = chain.from_iterable(_draws(rng.random, _BUF)).__next__
        self._w = chain.from_iterable(_draws(rng.lognormal, -0.5 * 0.47**2, 0.47, _BUF)).__next__
        # what the call loop in _serve reads on every call (these lists and dicts are only ever
        # changed in place, so binding them once is safe)
        self._hot = (self.limited, self.routable, self.rr, self.ready, self.slots, self.share, self.cpu_acc, self.metered,
                     self.ep_work, self.pools, self._w, self._next_id)  # fmt: skip
        self.out = bytearray()
        self.events: list[tuple[float, str, str, str, str, dict[str, Any]]] = []
        self.logs: list[tuple[float, str, str, str, str, str | None]] = []
        self.down: list[tuple[int, float, float]] = []
        self.leaks: list[tuple[int, float, float, float]] = []
        self.sock_segments: list[tuple[int, float, float, float]] = []
        self.hogs: list[tuple[str, int, float, float, float]] = []
        self.changes: list[dict[str, Any]] = []
        self.restarts = [0] * self.n_inst
        self._started = False
        self._fault_procs: dict[int, simpy.Process] = {}
        self._stops: dict[int, simpy.Event] = {}
        self._inst_procs: dict[tuple[int, int], simpy.Process] = {}

    # ------------------------------------------------------------------ setup
    def _compile(self) -> None:
        topo = self.topo
        self.svc_names = topo.service_names()
        sidx = {n: i for i, n in enumerate(self.svc_names)}
        self.svc_index = sidx
        self.host_names = [h.name for h in topo.hosts]
        hidx = {n: i for i, n in enumerate(self.host_names)}
        placement = topo.placement()
        self.inst_names = [p[0] for p in placement]
        self.inst_index = {n: i for i, n in enumerate(self.inst_names)}
        self.inst_svc = [sidx[p[1]] for p in placement]
        self.inst_host = [hidx[p[2]] if p[2] is not None else -1 for p in placement]
        self.n_inst = len(placement)
        services = topo.services
        self.svc_insts: list[list[int]] = [[] for _ in services]
        for i, s in enumerate(self.inst_svc):
            self.svc_insts[s].append(i)
        self.cores = [services[s].cores for s in self.inst_svc]
        self.slots = [_Sem(services[s].capacity) for s in self.inst_svc]
        self.active = [0] * self.n_inst
        self.cpu_acc = [0.0] * self.n_inst
        self.epoch = [0] * self.n_inst
        # initial replicas run from the start; the rest wait for the autoscaler
        self.up = [False] * self.n_inst
        self.never_ran: set[int] = set()
        self.spare: set[int] = set()
        self.down_since: dict[int, float] = {}
        self.routable: list[list[int]] = [[] for _ in services]
        for s, insts in enumerate(self.svc_insts):
            for k, i in enumerate(insts):
                if k < services[s].replicas:
                    self.up[i] = True
                    self.routable[s].append(i)
                else:
                    self.never_ran.add(i)
                    self.spare.add(i)
                    self.down_since[i] = 0.0
        self.rr = [0] * len(services)
        self.version = [services[s].version for s in self.inst_svc]
        # fault state, per instance; ``flag`` lets the hot path skip all of it
        self.flag = [False] * self.n_inst
        self.parts: list[dict[str, float]] = [{} for _ in range(self.n_inst)]
        self.slow = [1.0] * self.n_inst
        self.app_share = [1.0] * self.n_inst
        # derived, for the hot path: running and under no fault; the CPU cores the app may use
        self.ready = [u and not f for u, f in zip(self.up, self.flag)]
        self.share = [c * a for c, a in zip(self.cores, self.app_share)]
        # CPU used is accumulated for the autoscaler, the only reader: on autoscaled services
        self.metered = [services[s].autoscale is not None for s in self.inst_svc]
        self.delay = [0.0] * self.n_inst
        self.loss = [0.0] * self.n_inst
        self.err_p = [0.0] * self.n_inst
        self.err_cause = [OK] * self.n_inst
        self.ep_err: dict[tuple[int, int], float] = {}
        self.sock_full = [math.inf] * self.n_inst
        self.leak_rate = [0.0] * self.n_inst
        self.leak_t0 = [0.0] * self.n_inst
        self.pools: dict[tuple[int, int], _Sem] = {}
        self.pool_leak: dict[tuple[int, int], float] = {}
        self.pool_fault = False
        # remediation state (the digital twin): drained instances, cordoned and hogged hosts,
        # instances on their way out, per-service admission limits, faults ended early
        self.drained: set[int] = set()
        # replicas someone scaled a service to by hand: like patching the HPA's minReplicas,
        # the autoscaler keeps at least that many (else it would undo the scale-up)
        self.scale_floor: dict[int, int] = {}
        self.cordoned: set[int] = set()
        self.hot_hosts: dict[int, int] = {}
        self.retiring: set[int] = set()
        self.limited = [False] * len(services)
        self.limit_rps = [0.0] * len(services)
        self.tokens = [0.0] * len(services)
        self.token_t = [0.0] * len(services)
        self.ended: dict[int, str] = {}
        # endpoints, globally indexed
        self.ep_names: list[str] = []
        self.ep_ops: list[str] = []
        self.ep_svc: list[int] = []
        self.ep_work: list[float] = []
        self.ep_timeout: list[float] = []
        self.ep_index: dict[tuple[str, str], int] = {}
        for s in services:
            for e in s.endpoints:
                self.ep_index[(s.name, e.name)] = len(self.ep_names)
                self.ep_names.append(e.name)
                self.ep_ops.append(e.operation or e.name)
                self.ep_svc.append(sidx[s.name])
                self.ep_work.append(e.work)
                self.ep_timeout.append(e.timeout)
        self.ep_steps: list[list[Any]] = [[] for _ in self.ep_names]
        for s in services:
            for e in s.endpoints:
                steps = []
                for step in e.calls:
                    if isinstance(step, tuple):
                        steps.append([self._compile_call(c) for c in step])
                    else:
                        steps.append(self._compile_call(step))
                self.ep_steps[self.ep_index[(s.name, e.name)]] = steps
        self.ep_leaf = [not steps for steps in self.ep_steps]
        self._compile_calls()
        entries = topo.entry_endpoints()
        self.entry_eps = [self.ep_index[(s, e)] for s, e, _ in entries]
        self.entry_weights = [w for _, _, w in entries]

    def _compile_calls(self, inline: bool = True) -> None:
        """Set ``ep_calls``: each endpoint's calls in the order it makes them, one entry per call
        (a call with ``count: 3`` is three), as ``(kind, service, endpoint, optional, retries,
        timeout, pool, last)``; a parallel group is one entry with the group's compiled calls in
        place of the service. ``last`` marks the end of a step, where a request checks that its
        instance is still the one it started on. *inline* False sends every call through
        :meth:`_serve` (the model without its fast path, for tests)."""
        self.ep_calls: list[list[tuple[Any, ...]]] = []
        for steps in self.ep_steps:
            calls: list[tuple[Any, ...]] = []
            for step in steps:
                if type(step) is list:
                    calls.append((_PARALLEL, step, -1, False, 0, 0.0, 0, True))
                    continue
                cs, ce, count, optional, retries, timeout, pool, asynchronous = step
                kind = _ASYNC if asynchronous else _LEAF if inline and self.ep_leaf[ce] else _CALL
                calls.extend((kind, cs, ce, optional, retries, timeout, pool, k == count - 1) for k in range(count))
            self.ep_calls.append(calls)

    def _compile_call(self, c: Call) -> tuple[int, int, int, bool, int, float, int, bool]:
        return (
            self.svc_index[c.service],
            self.ep_index[(c.service, c.endpoint)],
            c.count,
            c.optional,
            c.retries,
            c.timeout,
            c.pool or 0,
            c.asynchronous,
        )

    # ------------------------------------------------------------------ randomness
    # ``self._u()`` (uniform in [0, 1)) and ``self._w()`` (a service-time factor: lognormal with
    # mean 1 and a coefficient of variation of ~0.5) are set in __init__: C-level ``next`` on
    # endless streams of buffers drawn from the run's generator one buffer at a time, each
    # when the one before runs out, so the draws happen in event order.

    # ------------------------------------------------------------------ running
    def run(self) -> EngineResult:
        """Run the model to the end of the window and return what it recorded."""
        self.start()
        self.advance(self.duration)
        return self.result()

    def start(self) -> None:
        """Schedule the arrivals, the faults and the autoscalers (once; later calls do nothing)."""
        if self._started:
            return
        self._started = True
        env = self.env
        _spawn(env, self._arrive())
        for f in self.faults:
            self._fault_procs[id(f)] = env.process(self._fault(f))
        for s, svc in enumerate(self.topo.services):
            if svc.autoscale is not None:
                env.process(self._autoscale(s))

    def advance(self, until: float) -> None:
        """Run the model up to simulated second *until* (at most the run's end); a run can be
        advanced in steps and changed in between (the digital twin does)."""
        self.start()
        until = min(float(until), self.duration)
        if until > self.env.now:
            # a run allocates an object or two per event and makes no reference cycles (a test
            # checks), so reference counting frees everything and the cyclic collector, which
            # would otherwise wake every few hundred allocations, only costs time
            collecting = gc.isenabled()
            gc.disable()
            try:
                self.env.run(until=until)
            finally:
                if collecting:
                    gc.enable()

    def result(self) -> EngineResult:
        """Return what the run recorded up to now (instances still down count as down until now)."""
        now = self.env.now
        down = self.down + [(i, t0, now) for i, t0 in self.down_since.items()]
        # requests still in flight have no row yet: their ids are the gaps. The arrays made
        # here are copies, so the view of ``out`` goes at once (a live view would stop the run
        # from growing it)
        rows = np.frombuffer(self.out, dtype=FINISHED_DTYPE)
        order = np.argsort(rows["id"], kind="stable")
        ids = rows["id"][order]
        records = structured_to_unstructured(rows[list(RECORD_FIELDS)], dtype=np.float64)[order]
        del rows
        return EngineResult(
            records=records,
            ids=ids,
            events=self.events,
            logs=self.logs,
            down=down,
            leaks=self.leaks,
            sockets=self.sock_segments,
            hogs=self.hogs,
            changes=self.changes,
            never_ran=self.never_ran,
            sim_events=_events_processed(self.env),
            faults=self.faults,
        )

    def finished(self, since: int = 0) -> np.ndarray:
        """Return the attempts finished so far, from the *since*-th on, in the order they
        finished: a structured array of :data:`FINISHED_DTYPE` (a copy; the run may go on)."""
        return np.frombuffer(self.out, dtype=FINISHED_DTYPE, offset=since * _RECORD.size).copy()

    def n_finished(self) -> int:
        """Return how many attempts have finished so far."""
        return len(self.out) // _RECORD.size

    def _arrive(self) -> Any:
        env = self.env
        eps = self.entry_eps
        serve = self._serve
        ep_svc = self.ep_svc
        ep_timeout = self.ep_timeout
        for k, (t, e) in enumerate(zip(self.arrivals.times.tolist(), self.arrivals.entry.tolist())):
            dt = t - env._now
            if dt > 0:
                yield env._now + dt  # a timer (see _Request)
            ep = eps[e]
            # the request's own generator is the process (no wrapper frame on every resume)
            _spawn(env, serve(k, -1, -1, ep_svc[ep], ep, env._now + ep_timeout[ep], 0))

    def _sleep(self, delay: float) -> Timeout:
        """Return ``env.timeout(delay)``: a simpy Timeout scheduled the same way (one event id from
        the environment's counter, normal priority), made without the class call."""
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        env = self.env
        ev = _new(_Sleep)
        ev.callbacks, ev._value, ev._ok = [], None, True
        _push(env._queue, (env._now + delay, NORMAL, next(env._eid), ev))
        return ev

    def _attempts(
        self, trace: int, parent: int, caller: int, s: int, ep: int, retries: int, timeout: float, deadline: float
    ) -> Any:
        env = self.env
        attempt = 0
        while True:
            dl = env._now + timeout
            if dl > deadline:  # noqa: PLR1730 (min() is a call, on the hot path)
                dl = deadline
            status = yield from self._serve(trace, parent, caller, s, ep, dl, attempt)
            if status == OK or status not in RETRYABLE or attempt >= retries:
                return status
            attempt += 1
            backoff = 0.025 * (1 << attempt) * (0.5 + self._u())
            if env._now + backoff >= deadline:
                return status
            yield env._now + backoff  # a timer (see _Request)

    def _serve(self, trace: int, parent: int, caller: int, s: int, ep: int, deadline: float, attempt: int,
               rec: int = -1, i: int = -1) -> Any:
        """Serve one request attempt at service *s*: the generator of the request's life there.

        *rec* and *i* are given when the caller already took the record's slot and routed the
        request (the leaf fast path below, falling back here); otherwise this does both."""
        env = self.env
        now = env._now
        out = self.out
        pack = _pack
        if rec < 0:
            rec = self._next_id()
            if self.limited[s] and not self._admit(s, now):
                out += pack(rec, now, now, trace, parent, s, -1, ep, RATE_LIMITED, 0.0, 0, caller, attempt, 0.0, -1)
                return RATE_LIMITED
            routable = self.routable[s]
            if not routable:
                out += pack(rec, now, now, trace, parent, s, -1, ep, REFUSED, 0.0, 0, caller, attempt, 0.0, -1)
                return REFUSED
            k = self.rr[s] + 1
            self.rr[s] = k
            i = routable[k % len(routable)]
        if not self.up[i]:
            out += pack(rec, now, now, trace, parent, s, i, ep, REFUSED, 0.0, 0, caller, attempt, 0.0, -1)
            return REFUSED
        extra = NET_RTT
        flag = self.flag
        flagged = flag[i]
        if caller >= 0 and flag[caller]:
            extra += self.delay[caller]
            if now >= self.sock_full[caller] and self._u() < 0.8:
                out += pack(rec, now, now, trace, parent, s, i, ep, SOCKET, 0.0, 0, caller, attempt, 0.0, -1)
                return SOCKET
        if flagged:
            extra += self.delay[i]
            loss = self.loss[i]
            if loss:
                lost = 0
                while lost < 4 and self._u() < loss:
                    lost += 1
                # each lost segment costs a TCP retransmission timeout, doubling from 200 ms
                extra += 0.2 * ((1 << lost) - 1)
            if now >= self.sock_full[i] and self._u() < 0.8:
                out += pack(rec, now, now + 0.001, trace, parent, s, i, ep, SOCKET, 0.0, 1, caller, attempt, 0.0, -1)
                return SOCKET
        # a worker slot, or a place in the queue until the deadline
        sem = self.slots[i]
        wait = 0.0
        if sem.busy < sem.cap:
            sem.busy += 1
        else:
            ev = env.event()
            sem.waiters.append(ev)
            self._sleep(deadline - now).callbacks.append(lambda _e, ev=ev: _expire(ev, _e))
            got = yield ev
            wait = env._now - now
            if not got:
                cause = TIMEOUT if got is False else RESET
                out += pack(rec, now, env._now, trace, parent, s, i, ep, cause, 0.0, 1, caller, attempt, wait, -1)
                return cause
        epoch = self.epoch
        ep_i = epoch[i]
        work = self.ep_work[ep] * self._w()
        active = self.active
        share = self.share[i] / (active[i] + 1)
        t_work = work / (share if share < 1.0 else 1.0)  # noqa: FURB136 (no call on the hot path)
        if flagged:
            t_work *= self.slow[i]
            if self.leak_rate[i]:
                frac = self._mem_frac(i, env._now)
                if frac > 0.8:  # garbage collection thrashes as the heap fills
                    t_work *= 1.0 + 20.0 * (frac - 0.8)
        t_work += extra
        active[i] += 1
        self.cpu_acc[i] += work
        left = deadline - env._now
        if t_work >= left:
            return (yield from self._give_up(rec, now, trace, parent, s, i, ep, work, caller, attempt, wait, t_work, left, ep_i))
        yield env._now + t_work  # a timer: t_work seconds of work (see _Request)
        if epoch[i] != ep_i:
            out += pack(rec, now, env._now, trace, parent, s, i, ep, RESET, work, 1, caller, attempt, wait, -1)
            return RESET
        active[i] -= 1
        status = OK
        detail = -1
        if flagged:
            p = self.err_p[i]
            if p and self._u() < p:
                status = self.err_cause[i]
            elif self.ep_err:
                pe = self.ep_err.get((i, ep), 0.0)
                if pe and self._u() < pe:
                    status = EXCEPTION
        calls = self.ep_calls[ep]
        if status == OK and calls:
            # the calls: the names the loop uses on every call, bound once per request
            limited, routable_of, rr, ready, slots, share_of, cpu_acc, metered, ep_work, pools, w, next_id = self._hot
            for kind, cs, ce, optional, retries, timeout, pool, last in calls:
                if kind <= _CALL:  # a plain call (leaf or not): most calls
                    conn = None
                    if pool:
                        # _pooled inlined while a connection is free; a wait goes to _pooled
                        key = (i, cs)
                        conn = pools.get(key)
                        if conn is None:
                            conn = pools[key] = _Sem(pool)
                        if self.pool_fault:
                            leak = self.pool_leak.get(key, 0.0)
                            conn.cap = max(0, conn.base - math.ceil(leak * conn.base - 1e-9))
                        if conn.busy >= conn.cap:
                            r = yield from self._pooled(trace, rec, i, cs, ce, retries, timeout, deadline, pool)
                            conn = False
                        else:
                            conn.busy += 1
                    if conn is not False:
                        # _attempts inlined: this loop runs once per call, the hottest path
                        a = 0
                        while True:
                            t0 = env._now
                            dl = t0 + timeout
                            if dl > deadline:  # noqa: PLR1730 (min() is a call, on the hot path)
                                dl = deadline
                            routable = routable_of[cs]
                            if kind == _LEAF and routable and not limited[cs]:
                                # a leaf callee served in this frame: _serve's common case
                                # (instance up, not under a fault, a free worker) without a
                                # generator per call; anything else goes on in _serve
                                crec = next_id()
                                k = rr[cs] + 1
                                rr[cs] = k
                                j = routable[k % len(routable)]
                                sj = slots[j]
                                if ready[i]:
                                    extra = NET_RTT
                                else:
                                    # the caller's network delay, unless its sockets ran out
                                    extra = NET_RTT + self.delay[i] if t0 < self.sock_full[i] else -1.0
                                if ready[j] and extra > 0.0 and sj.busy < sj.cap:
                                    sj.busy += 1
                                    ej = epoch[j]
                                    cwork = ep_work[ce] * w()
                                    share = share_of[j] / (active[j] + 1)
                                    t_work = cwork / (share if share < 1.0 else 1.0) + extra  # noqa: FURB136
                                    active[j] += 1
                                    if metered[j]:
                                        cpu_acc[j] += cwork
                                    left = dl - t0
                                    if t_work >= left:
                                        r = yield from self._give_up(crec, t0, trace, rec, cs, j, ce, cwork, i, a, 0.0, t_work,
                                                                     left, ej)  # fmt: skip
                                    else:
                                        yield t0 + t_work  # a timer (see _Request)
                                        if epoch[j] != ej:
                                            r = RESET
                                        else:
                                            r = OK
                                            active[j] -= 1
                                            if sj.waiters:
                                                self._release(sj)
                                            else:
                                                sj.busy -= 1  # >= 1: it holds a worker, and its epoch is unchanged
                                        out += pack(crec, t0, env._now, trace, rec, cs, j, ce, r, cwork, 1, i, a, 0.0, -1)
                                else:
                                    r = yield from self._serve(trace, rec, i, cs, ce, dl, a, crec, j)
                            else:
                                r = yield from self._serve(trace, rec, i, cs, ce, dl, a)
                            if r == OK or r not in RETRYABLE or a >= retries:
                                break
                            a += 1
                            backoff = 0.025 * (1 << a) * (0.5 + self._u())
                            if env._now + backoff >= deadline:
                                break
                            yield env._now + backoff  # a timer (see _Request)
                        if conn is not None:
                            if conn.waiters:
                                self._release(conn)
                            elif conn.busy > 0:
                                conn.busy -= 1
                    if r != OK and not optional:
                        if r == _NO_CONNECTION:
                            status = POOL
                        else:
                            status = TIMEOUT if env._now >= deadline else UPSTREAM
                        detail = cs
                        break
                elif kind == _ASYNC:
                    _spawn(env, self._attempts(trace, rec, i, cs, ce, retries, timeout, env._now + timeout))
                else:  # _PARALLEL
                    procs = [
                        _spawn(env, self._attempts(trace, rec, i, c[0], c[1], c[4], c[5], deadline))
                        for c in cs
                        for _ in range(c[2])
                    ]
                    yield env.all_of(procs)
                    opts = [c for c in cs for _ in range(c[2])]
                    for c, p in zip(opts, procs):
                        if p.value != OK and not c[3]:
                            status, detail = (TIMEOUT if env._now >= deadline else UPSTREAM), c[0]
                            break
                    if status != OK:
                        break
                if last and epoch[i] != ep_i:
                    break
            if epoch[i] != ep_i:
                status = RESET
        if epoch[i] == ep_i:
            if sem.waiters:
                self._release(sem)
            elif sem.busy > 0:
                sem.busy -= 1
        out += pack(rec, now, env._now, trace, parent, s, i, ep, status, work, 1, caller, attempt, wait, detail)
        return status

    def _give_up(self, rec: int, now: float, trace: int, parent: int, s: int, i: int, ep: int, work: float, caller: int,
                 attempt: int, wait: float, t_work: float, left: float, epoch: int) -> Any:
        """The caller gives up at its deadline (*left* seconds on) while the server still works
        *t_work* seconds: record the attempt as timed out, and free the worker when it is done."""
        env = self.env
        if left > 0:
            yield env._now + left  # a timer (see _Request)
        rest = t_work - max(left, 0.0)
        self._sleep(rest).callbacks.append(lambda _e, i=i, epoch=epoch: self._late(i, epoch))
        self.out += _pack(rec, now, env._now + rest, trace, parent, s, i, ep, TIMEOUT, work, 1, caller, attempt, wait, -1)
        return TIMEOUT

    def _pooled(
        self, trace: int, parent: int, i: int, cs: int, ce: int, retries: int, timeout: float, deadline: float, size: int
    ) -> Any:
        env = self.env
        key = (i, cs)
        sem = self.pools.get(key)
        if sem is None:
            sem = self.pools[key] = _Sem(size)
        if self.pool_fault:
            leak = self.pool_leak.get(key, 0.0)
            sem.cap = max(0, sem.base - math.ceil(leak * sem.base - 1e-9))
        if sem.busy < sem.cap:
            sem.busy += 1
        else:
            ev = env.event()
            sem.waiters.append(ev)
            limit = min(deadline, env.now + timeout)
            env.timeout(limit - env.now).callbacks.append(lambda _e, ev=ev: _expire(ev, _e))
            got = yield ev
            if not got:
                return _NO_CONNECTION
        r = yield from self._attempts(trace, parent, i, cs, ce, retries, timeout, deadline)
        self._release(sem)
        return r

    @staticmethod
    def _release(sem: _Sem) -> None:
        q = sem.waiters
        while q:
            ev = q.popleft()
            if not ev.triggered:
                ev.succeed(True)  # the slot passes straight to the next in line
                return
        if sem.busy > 0:
            sem.busy -= 1

    def _late(self, i: int, epoch: int) -> None:
        if self.epoch[i] == epoch:
            self.active[i] -= 1
            self._release(self.slots[i])

    def _mem_frac(self, i: int, now: float) -> float:
        svc = self.topo.services[self.inst_svc[i]]
        used = svc.mem_mb + self.leak_rate[i] * (now - self.leak_t0[i]) / 2**20
        return used / svc.mem_limit_mb

    # ------------------------------------------------------------------ lifecycle
    def _event(self, entity: str, kind: str, reason: str, message: str, **attrs: Any) -> None:
        self.events.append((self.env.now, entity, kind, reason, message, attrs))

    def _log(self, entity: str, level: str, template: str, message: str) -> None:
        self.logs.append((self.env.now, entity, level, template, message, None))

    def _kill(self, i: int, reason: str, exit_code: int) -> None:
        """Stop instance *i*: in-flight and queued requests fail, routing stops after the probe lag."""
        if not self.up[i]:
            return
        env = self.env
        name = self.inst_names[i]
        svc = self.svc_names[self.inst_svc[i]]
        self.up[i] = False
        self.ready[i] = False
        self.epoch[i] += 1
        self.active[i] = 0
        sem = self.slots[i]
        sem.busy = 0
        while sem.waiters:
            ev = sem.waiters.popleft()
            if not ev.triggered:
                ev.succeed(None)
        self.down_since[i] = env.now
        self.restarts[i] += 1
        self._event(
            name, "k8s", reason,
            f"Container {svc} in pod {name} terminated: {reason} (exit code {exit_code})",
            type="Warning", involvedObject={"kind": "Pod", "name": name}, exitCode=exit_code, restartCount=self.restarts[i],
        )  # fmt: skip
        env.timeout(PROBE_LAG).callbacks.append(lambda _e, i=i: self._unroute(i))

    def _unroute(self, i: int) -> None:
        if not self.up[i]:
            r = self.routable[self.inst_svc[i]]
            if i in r:
                r.remove(i)
                name = self.inst_names[i]
                self._event(name, "k8s", "Unhealthy", f"Readiness probe failed: dial tcp {name}:8080: connect: connection refused",
                            type="Warning", involvedObject={"kind": "Pod", "name": name})

    def _start(self, i: int, reason: str = "Started") -> None:
        """Start instance *i*'s container; it takes traffic after :data:`READY_DELAY`."""
        env = self.env
        name = self.inst_names[i]
        svc = self.svc_names[self.inst_svc[i]]
        self.up[i] = True
        self.ready[i] = not self.flag[i]
        self.never_ran.discard(i)
        self.spare.discard(i)
        if i in self.down_since:
            self.down.append((i, self.down_since.pop(i), env.now))
        self._event(name, "k8s", reason, f"Started container {svc}", type="Normal", involvedObject={"kind": "Pod", "name": name})
        self._log(name, "INFO", "Starting <*> version <*> on port <*>", f"Starting {svc} version {self.version[i]} on port 8080")

        def ready(_e: Any, i: int = i) -> None:
            if self.up[i] and i not in self.routable[self.inst_svc[i]] and i not in self.drained:
                self.routable[self.inst_svc[i]].append(i)
                self.routable[self.inst_svc[i]].sort()

        env.timeout(READY_DELAY).callbacks.append(ready)

    def _restart_after(self, i: int) -> Any:
        """Wait the back-off for instance *i*'s next restart (emitting BackOff), then start it."""
        n = self.restarts[i]
        delay = BACKOFF[min(n - 1, len(BACKOFF) - 1)]
        name = self.inst_names[i]
        svc = self.svc_names[self.inst_svc[i]]
        if n > 1:
            self._event(name, "k8s", "BackOff", f"Back-off restarting failed container {svc} in pod {name}",
                        type="Warning", involvedObject={"kind": "Pod", "name": name}, backoffSeconds=delay)
        yield self.env.timeout(delay)
        self._start(i)

    def _set_part(self, i: int, key: str, factor: float | None) -> None:
        parts = self.parts[i]
        if factor is None:
            parts.pop(key, None)
        else:
            parts[key] = factor
        slow = 1.0
        for v in parts.values():
            slow *= v
        self.slow[i] = slow
        self._reflag(i)

    def _reflag(self, i: int) -> None:
        self.flag[i] = bool(
            self.parts[i] or self.delay[i] or self.loss[i] or self.err_p[i] or self.leak_rate[i]
            or self.sock_full[i] < math.inf or any(k[0] == i for k in self.ep_err)
        )  # fmt: skip
        self.ready[i] = self.up[i] and not self.flag[i]

    # ------------------------------------------------------------------ faults
    def _fault(self, f: ResolvedFault) -> Any:
        env = self.env
        yield env.timeout(f.start)
        insts = [self.inst_index[n] for n in f.instances]
        handler = getattr(self, f"_fault_{f.kind}")
        yield from handler(f, insts)

    def _until_end(self, f: ResolvedFault) -> Any:
        left = f.end - self.env.now
        if left > 0:
            yield from self._wait(f, left)

    def _wait(self, f: ResolvedFault, delay: float) -> Any:
        """Wait *delay* seconds of fault *f*; return False when a remediation ended the fault."""
        if id(f) in self.ended:
            return False
        try:
            yield self.env.timeout(delay)
        except simpy.Interrupt:
            return False
        return True

    def _fault_cpu(self, f: ResolvedFault, insts: list[int]) -> Any:
        for i in insts:
            self.app_share[i] = max(0.05, 1.0 - f.intensity)
            self.share[i] = self.cores[i] * self.app_share[i]
            self._set_part(i, "cpu", 1.0)
            self.hogs.append(("cpu", i, f.start, f.end, f.intensity * self.cores[i]))
        yield from self._until_end(f)
        for i in insts:
            self.app_share[i] = 1.0
            self.share[i] = self.cores[i] * self.app_share[i]
            self._set_part(i, "cpu", None)

    def _fault_disk(self, f: ResolvedFault, insts: list[int]) -> Any:
        for i in insts:
            kind = self.topo.services[self.inst_svc[i]].kind
            share = 0.8 if kind != "service" else 0.3
            self._set_part(i, "disk", 1.0 + 4.0 * f.intensity * share)
            self.hogs.append(("disk", i, f.start, f.end, f.intensity * 80e6))
        yield from self._until_end(f)
        for i in insts:
            self._set_part(i, "disk", None)

    def _fault_delay(self, f: ResolvedFault, insts: list[int]) -> Any:
        for i in insts:
            self.delay[i] = f.intensity
            self._reflag(i)
        yield from self._until_end(f)
        for i in insts:
            self.delay[i] = 0.0
            self._reflag(i)

    def _fault_loss(self, f: ResolvedFault, insts: list[int]) -> Any:
        for i in insts:
            self.loss[i] = f.intensity
            self._reflag(i)
        yield from self._until_end(f)
        for i in insts:
            self.loss[i] = 0.0
            self._reflag(i)

    def _fault_error(self, f: ResolvedFault, insts: list[int]) -> Any:
        ep = self.ep_index[(f.service, f.endpoint)]
        for i in insts:
            self.ep_err[(i, ep)] = f.intensity
            self._reflag(i)
        yield from self._until_end(f)
        for i in insts:
            self.ep_err.pop((i, ep), None)
            self._reflag(i)

    def _fault_socket(self, f: ResolvedFault, insts: list[int]) -> Any:
        for i in insts:
            svc = self.topo.services[self.inst_svc[i]]
            rate = f.intensity * (svc.socket_limit - svc.sockets) / 60.0
            self.sock_full[i] = f.start + (svc.socket_limit - svc.sockets) / rate
            self.sock_segments.append((i, f.start, f.end, rate))
            self._reflag(i)
            self.env.timeout(self.sock_full[i] - f.start).callbacks.append(
                lambda _e, i=i, svc=svc: self.sock_full[i] <= self.env.now and self._log(
                    self.inst_names[i], "ERROR", "accept4: too many open files; retrying in <*>",
                    f"accept4: too many open files; retrying in 5ms (limit {svc.socket_limit})")
            )  # fmt: skip
        yield from self._until_end(f)
        for i in insts:
            self.sock_full[i] = math.inf
            self._reflag(i)

    def _fault_mem(self, f: ResolvedFault, insts: list[int]) -> Any:
        procs = [self.env.process(self._leak(f, i)) for i in insts]
        for i, p in zip(insts, procs):
            self._inst_procs[(id(f), i)] = p
        yield self.env.all_of(procs)

    def _leak(self, f: ResolvedFault, i: int) -> Any:
        try:
            yield from self._leak_loop(f, i)
        except simpy.Interrupt:
            # a restart freed the heap: the open segment ends now
            for k in range(len(self.leaks) - 1, -1, -1):
                row, t0, t1, rate = self.leaks[k]
                if row == i:
                    if t1 > self.env.now:
                        self.leaks[k] = (row, t0, self.env.now, rate)
                    break
        self.leak_rate[i] = 0.0
        self._reflag(i)

    def _leak_loop(self, f: ResolvedFault, i: int) -> Any:
        env = self.env
        svc = self.topo.services[self.inst_svc[i]]
        headroom = (svc.mem_limit_mb - svc.mem_mb) * 2**20
        rate = f.intensity * headroom / 60.0  # bytes per second
        name = self.inst_names[i]
        while env.now < f.end:
            if not self.up[i]:
                yield env.timeout(1.0)
                continue
            t0 = env.now
            self.leak_rate[i] = rate
            self.leak_t0[i] = t0
            self._reflag(i)
            t_oom = t0 + headroom / rate
            t_warn = t0 + 0.85 * headroom / rate
            if t_warn < f.end:
                env.timeout(t_warn - t0).callbacks.append(
                    lambda _e, name=name, t0=t0: self.leak_rate[i] and self.leak_t0[i] == t0 and self._log(
                        name, "WARN", "GC overhead limit approaching: heap usage <*>% of <*>",
                        f"GC overhead limit approaching: heap usage 87% of {svc.mem_limit_mb:g}Mi")
                )  # fmt: skip
            # the segment is known in full now; recording it up front keeps it if the run ends first
            self.leaks.append((i, t0, min(t_oom, f.end), rate))
            if t_oom >= f.end:
                yield env.timeout(f.end - t0)
                break
            yield env.timeout(t_oom - t0)
            self.leak_rate[i] = 0.0
            self._reflag(i)
            self._log(name, "ERROR", "java.lang.OutOfMemoryError: <*>", "java.lang.OutOfMemoryError: Java heap space")
            self._kill(i, "OOMKilled", 137)
            yield from self._restart_after(i)

    def _fault_crash(self, f: ResolvedFault, insts: list[int]) -> Any:
        procs = [self.env.process(self._crashloop(f, i)) for i in insts]
        for i, p in zip(insts, procs):
            self._inst_procs[(id(f), i)] = p
        yield self.env.all_of(procs)

    def _crashloop(self, f: ResolvedFault, i: int) -> Any:
        try:
            yield from self._crashloop_body(f, i)
        except simpy.Interrupt:
            pass  # a restart cleared the crash state; the restart itself starts the container

    def _crashloop_body(self, f: ResolvedFault, i: int) -> Any:
        env = self.env
        name = self.inst_names[i]
        svc = self.svc_names[self.inst_svc[i]]
        self._event(name, "k8s", "Killing", f"Stopping container {svc}", type="Normal", involvedObject={"kind": "Pod", "name": name})
        first = True
        while True:
            if self.up[i]:
                if not first:
                    self._log(name, "ERROR", "panic: <*>", f"panic: failed to connect to dependency during startup (pod {name})")
                self._kill(i, "Error" if not first else "Killed", 1 if not first else 137)
            first = False
            n = self.restarts[i]
            delay = BACKOFF[min(n - 1, len(BACKOFF) - 1)]
            if n > 1:
                self._event(name, "k8s", "BackOff", f"Back-off restarting failed container {svc} in pod {name}",
                            type="Warning", involvedObject={"kind": "Pod", "name": name}, backoffSeconds=delay)
            yield env.timeout(delay)
            self._start(i)
            if env.now >= f.end:
                return
            # while the fault lasts the container dies again a few seconds after starting
            yield env.timeout(min(3.0 + 4.0 * self._u(), max(0.0, f.end - env.now) + 0.01))
            if env.now >= f.end:
                return

    def _fault_deploy(self, f: ResolvedFault, insts: list[int]) -> Any:
        env = self.env
        svc = self.topo.services[self.svc_index[f.service]]
        old = svc.version
        new = _bump(old)
        revision = f"{int(self._u() * 2**32):08x}"
        self._event(f.service, "deploy", "DeploymentUpdated", f"deployment/{f.service} image {f.service}:{old} -> {f.service}:{new}",
                    version=new, previous=old, revision=revision, author="ci-bot")
        self.changes.append({
            "id": f"deploy-{f.service}-{new}", "service": f.service, "time": env.now, "author": "ci-bot",
            "revision": revision, "files": [f"src/{f.service}/handler.go", f"src/{f.service}/client.go"],
            "description": f"deploy {f.service} {new}",
        })  # fmt: skip
        self._event(f.service, "k8s", "ScalingReplicaSet", f"Scaled up replica set {f.service}-{revision[:6]} to {len(insts)}",
                    type="Normal", involvedObject={"kind": "Deployment", "name": f.service})
        for i in insts:
            # rolling update, surge one: the new pod starts, then the old one stops
            if not (yield from self._wait(f, 4.0 + 2.0 * self._u())):
                break
            name = self.inst_names[i]
            self._event(name, "k8s", "Pulled", f"Container image \"{f.service}:{new}\" already present on machine",
                        type="Normal", involvedObject={"kind": "Pod", "name": name})
            self.version[i] = new
            self._set_part(i, "deploy", 1.0 + 4.0 * f.intensity)
            self.err_p[i] = 0.2 * f.intensity
            self.err_cause[i] = BAD_VERSION
            self._reflag(i)
            self._log(name, "INFO", "Starting <*> version <*> on port <*>", f"Starting {f.service} version {new} on port 8080")
        yield from self._until_end(f)
        if env.now < self.duration:
            self._event(f.service, "deploy", "RollbackCompleted", f"deployment/{f.service} rolled back to {f.service}:{old}",
                        version=old, previous=new, revision=revision, author=self.ended.get(id(f), "oncall"))
            for i in insts:
                self.version[i] = old
                self._set_part(i, "deploy", None)
                self.err_p[i] = 0.0
                self._reflag(i)

    def _fault_config(self, f: ResolvedFault, insts: list[int]) -> Any:
        env = self.env
        key = "server.max_threads"
        svc = self.topo.services[self.svc_index[f.service]]
        new_cap = max(1, int(svc.capacity * (1.0 - 0.9 * f.intensity)))
        self._event(f.service, "config", "ConfigMapUpdated", f"configmap/{f.service}-config updated: {key} {svc.capacity} -> {new_cap}",
                    key=key, old=svc.capacity, new=new_cap, author="jdoe")
        self.changes.append({
            "id": f"config-{f.service}-{int(env.now)}", "service": f.service, "time": env.now, "author": "jdoe",
            "revision": None, "files": [f"deploy/{f.service}/configmap.yaml"],
            "description": f"set {key} to {new_cap}",
        })  # fmt: skip
        applied = yield from self._wait(f, 3.0)  # pods pick the new file up
        for i in insts if applied else ():
            self.slots[i].cap = new_cap
            self.err_p[i] = 0.1 * f.intensity
            self.err_cause[i] = CONFIG
            self._set_part(i, "config", 1.0)
            self._log(self.inst_names[i], "WARN", "configuration reloaded: <*> = <*>", f"configuration reloaded: {key} = {new_cap}")
        yield from self._until_end(f)
        if env.now < self.duration:
            self._event(f.service, "config", "ConfigMapUpdated", f"configmap/{f.service}-config reverted: {key} {new_cap} -> {svc.capacity}",
                        key=key, old=new_cap, new=svc.capacity, author=self.ended.get(id(f), "oncall"))
        for i in insts:
            self.slots[i].cap = svc.capacity
            self.err_p[i] = 0.0
            self._set_part(i, "config", None)

    def _fault_pool(self, f: ResolvedFault, insts: list[int]) -> Any:
        target = self.svc_index[f.service]
        keys: list[tuple[int, int]] = []
        kind = self.topo.services[target].kind
        if kind != "service":
            # pools that point at the database: every caller instance's pool to it
            for s, svc in enumerate(self.topo.services):
                for e in svc.endpoints:
                    for c in e.flat_calls():
                        if c.service == f.service and c.pool:
                            keys.extend((i, target) for i in self.svc_insts[s])
        else:
            for e in self.topo.services[target].endpoints:
                for c in e.flat_calls():
                    if c.pool:
                        keys.extend((i, self.svc_index[c.service]) for i in insts)
        keys = sorted(set(keys))
        self.pool_fault = True
        for k in keys:
            self.pool_leak[k] = f.intensity
            sem = self.pools.get(k)
            if sem is not None:
                sem.cap = max(0, sem.base - math.ceil(f.intensity * sem.base - 1e-9))
        yield from self._until_end(f)
        for k in keys:
            self.pool_leak.pop(k, None)
            sem = self.pools.get(k)
            if sem is not None:
                sem.cap = sem.base
                while sem.waiters and sem.busy < sem.cap:
                    ev = sem.waiters.popleft()
                    if not ev.triggered:
                        sem.busy += 1
                        ev.succeed(True)
        self.pool_fault = bool(self.pool_leak)

    def _fault_neighbour(self, f: ResolvedFault, insts: list[int]) -> Any:
        h = self.host_names.index(f.host)
        pod = f"batch-reindex-{int(self._u() * 2**24):06x}"
        self._event(pod, "k8s", "Scheduled", f"Successfully assigned default/{pod} to {f.host}", type="Normal",
                    involvedObject={"kind": "Pod", "name": pod}, node=f.host)
        victims = [i for i in range(self.n_inst) if self.inst_host[i] == h]
        self.hogs.append(("neighbour", h, f.start, f.end, f.intensity * self.topo.hosts[h].cores))
        self.hot_hosts[h] = self.hot_hosts.get(h, 0) + 1
        for i in victims:
            self._set_part(i, "neighbour", 1.0 + 3.0 * f.intensity)
        yield from self._until_end(f)
        for i in victims:
            self._set_part(i, "neighbour", None)
        self.hot_hosts[h] -= 1

    # ------------------------------------------------------------------ remediation (the digital twin)
    def _admit(self, s: int, now: float) -> bool:
        """Token bucket of service *s*'s rate limit: True when the request may enter."""
        rate = self.limit_rps[s]
        tokens = min(rate, self.tokens[s] + (now - self.token_t[s]) * rate)
        self.token_t[s] = now
        if tokens >= 1.0:
            self.tokens[s] = tokens - 1.0
            return True
        self.tokens[s] = tokens
        return False

    def active_faults(self) -> list[ResolvedFault]:
        """Return the faults under way now and not ended by a remediation."""
        now = self.env.now
        return [f for f in self.faults if f.start <= now < f.end and id(f) not in self.ended]

    def end_fault(self, f: ResolvedFault, by: str = "aisre") -> bool:
        """End fault *f* now, as its remedy would (state restored the way the fault's own end
        restores it); return False when it is not under way."""
        if f not in self.active_faults():
            return False
        self.ended[id(f)] = by
        if f.kind in ("mem", "crash"):
            for i in (self.inst_index[n] for n in f.instances):
                proc = self._inst_procs.get((id(f), i))
                if proc is not None and proc.is_alive:
                    proc.interrupt(by)
                if not self.up[i] and i not in self.spare:
                    self._start(i)
        else:
            proc = self._fault_procs.get(id(f))
            if proc is not None and proc.is_alive:
                proc.interrupt(by)
        return True

    def add_instance(self, s: int) -> int:
        """Create a new (stopped) instance of service *s* on the least loaded schedulable host
        (not cordoned, no noisy neighbour) and return its index."""
        svc = self.topo.services[s]
        name = f"{svc.name}-{len(self.svc_insts[s])}"
        hosts = [self.host_names.index(h) for h in svc.hosts] or list(range(len(self.host_names)))
        ok = [h for h in hosts if h not in self.cordoned and not self.hot_hosts.get(h)] or hosts
        load = [sum(1 for j in range(self.n_inst) if self.inst_host[j] == h and self.up[j]) for h in ok]
        host = ok[load.index(min(load))] if ok else -1
        i = self.n_inst
        self.n_inst += 1
        self.inst_names.append(name)
        self.inst_index[name] = i
        self.inst_svc.append(s)
        self.inst_host.append(host)
        self.svc_insts[s].append(i)
        self.cores.append(svc.cores)
        self.slots.append(_Sem(svc.capacity))
        for lst, v in ((self.active, 0), (self.cpu_acc, 0.0), (self.epoch, 0), (self.up, False), (self.version, svc.version),
                       (self.flag, False), (self.slow, 1.0), (self.app_share, 1.0), (self.delay, 0.0), (self.loss, 0.0),
                       (self.err_p, 0.0), (self.err_cause, OK), (self.sock_full, math.inf), (self.leak_rate, 0.0),
                       (self.leak_t0, 0.0), (self.restarts, 0)):  # fmt: skip
            lst.append(v)
        self.ready.append(False)
        self.share.append(svc.cores * 1.0)
        self.metered.append(svc.autoscale is not None)
        self.parts.append({})
        self.never_ran.add(i)
        self.spare.add(i)
        self.down_since[i] = 0.0
        return i

    def serving(self, s: int) -> list[int]:
        """Return the instances of service *s* its Deployment owns now (running or restarting,
        not spare, not on their way out)."""
        return [i for i in self.svc_insts[s] if i not in self.spare and i not in self.retiring]

    def scale_to(self, s: int, replicas: int, by: str = "aisre") -> tuple[int, int]:
        """Scale service *s* to *replicas* instances now; return (before, after). Under an
        autoscaler the count becomes its floor (as patching the HPA's minReplicas does)."""
        env = self.env
        svc = self.topo.services[s]
        current = self.serving(s)
        before = len(current)
        if svc.autoscale is not None:
            self.scale_floor[s] = replicas
        self._event(svc.name, "scale", "ScalingReplicaSet", f"Scaled replica set {svc.name} from {before} to {replicas}",
                    type="Normal", involvedObject={"kind": "Deployment", "name": svc.name}, replicas=replicas, author=by)
        if replicas > before:
            idle = sorted(i for i in self.svc_insts[s] if i in self.spare and not self.up[i] and i not in self.drained
                          and not self.hot_hosts.get(self.inst_host[i]) and self.inst_host[i] not in self.cordoned)  # fmt: skip
            for _ in range(replicas - before):
                i = idle.pop(0) if idle else self.add_instance(s)
                self._start(i, "Started")
        else:
            for i in sorted(current, reverse=True)[: before - replicas]:
                if i in self.routable[s]:
                    self.routable[s].remove(i)
                self.retiring.add(i)
                self._event(self.inst_names[i], "k8s", "Killing", f"Stopping container {svc.name}", type="Normal",
                            involvedObject={"kind": "Pod", "name": self.inst_names[i]})
                env.timeout(30.0).callbacks.append(lambda _e, i=i: self._retire(i))
        return before, replicas

    def restart(self, i: int, by: str = "aisre") -> None:
        """Delete instance *i*'s pod now: its process state (leaked heap, exhausted sockets and
        pool connections, a crash loop) is cleared and it starts again after RESTART_DELAY."""
        env = self.env
        now = env.now
        name = self.inst_names[i]
        for f in self.active_faults():
            if f.kind in ("mem", "crash") and name in f.instances:
                proc = self._inst_procs.get((id(f), i))
                if proc is not None and proc.is_alive:
                    proc.interrupt(by)
        if self.sock_full[i] < math.inf:
            self.sock_full[i] = math.inf
            self.sock_segments = [(r, a, min(b, now) if r == i else b, rate) for r, a, b, rate in self.sock_segments]
            self._reflag(i)
        for key in [k for k in self.pool_leak if k[0] == i]:
            self.pool_leak.pop(key)
            sem = self.pools.get(key)
            if sem is not None:
                sem.cap = sem.base
        self.pool_fault = bool(self.pool_leak)
        svc = self.svc_names[self.inst_svc[i]]
        self._event(name, "k8s", "Killing", f"Stopping container {svc}", type="Normal", involvedObject={"kind": "Pod", "name": name},
                    author=by)  # fmt: skip
        if self.up[i]:
            self._kill(i, "Completed", 0)
        self.restarts[i] = 0  # a new pod: its restart count (and crash back-off) starts over
        for key in [k for k in self.pools if k[0] == i]:
            self.pools[key] = _Sem(self.pools[key].base)  # a new process opens new pools
        env.timeout(RESTART_DELAY).callbacks.append(lambda _e, i=i: None if self.up[i] or i in self.spare else self._start(i))

    def drain(self, i: int, by: str = "aisre") -> None:
        """Stop routing new requests to instance *i* (it keeps running and finishes what it has)."""
        self.drained.add(i)
        r = self.routable[self.inst_svc[i]]
        if i in r:
            r.remove(i)
        name = self.inst_names[i]
        self._event(name, "remediation", "TrafficShifted", f"pod {name} taken out of the load balancer", author=by)

    def drain_host(self, h: int, by: str = "aisre") -> list[int]:
        """Cordon host *h* and move its instances elsewhere (``kubectl drain``): each is taken
        out of the load balancer and a replacement starts on another host; return the drained."""
        self.cordoned.add(h)
        moved = [i for i in range(self.n_inst) if self.inst_host[i] == h and i not in self.spare and i not in self.drained]
        self._event(self.host_names[h], "k8s", "NodeNotSchedulable", f"Node {self.host_names[h]} status is now: NodeNotSchedulable",
                    type="Normal", involvedObject={"kind": "Node", "name": self.host_names[h]}, author=by)  # fmt: skip
        for i in moved:
            s = self.inst_svc[i]
            idle = sorted(j for j in self.svc_insts[s] if j in self.spare and not self.up[j] and j not in self.drained
                          and self.inst_host[j] not in self.cordoned and not self.hot_hosts.get(self.inst_host[j]))  # fmt: skip
            j = idle[0] if idle else self.add_instance(s)
            self._start(j, "Started")
            # make before break: the old pod leaves the load balancer once its replacement is
            # ready, and stops when its in-flight requests are done
            self.retiring.add(i)
            self.drained.add(i)
            self.env.timeout(READY_DELAY).callbacks.append(lambda _e, i=i: self.drain(i, by))
            self.env.timeout(READY_DELAY + 30.0).callbacks.append(lambda _e, i=i: self._retire(i))
        return moved

    def set_rate_limit(self, s: int, rps: float | None, by: str = "aisre") -> None:
        """Admit at most *rps* requests per second into service *s* (``None``: no limit); the
        rest are rejected at once with ``rate_limited``, which callers do not retry."""
        name = self.svc_names[s]
        if rps is None:
            self.limited[s] = False
        else:
            self.limited[s] = True
            self.limit_rps[s] = float(rps)
            self.tokens[s] = float(rps)
            self.token_t[s] = self.env.now
        self._event(name, "remediation", "RateLimited", f"ingress {name}: limit {'removed' if rps is None else f'{rps:g} requests/s'}",
                    rps=rps, author=by)  # fmt: skip


    def _retire(self, i: int) -> None:
        self.retiring.discard(i)
        if self.up[i] and i not in self.routable[self.inst_svc[i]]:
            self.up[i] = False
            self.ready[i] = False
            self.epoch[i] += 1
            self.slots[i].busy = 0
            self.active[i] = 0
            self.down_since[i] = self.env.now
            self.spare.add(i)

    # ------------------------------------------------------------------ autoscaler
    def _autoscale(self, s: int) -> Any:
        env = self.env
        svc = self.topo.services[s]
        assert svc.autoscale is not None
        low_streak = 0
        last: dict[int, float] = {}
        while True:
            yield env.timeout(AUTOSCALE_PERIOD)
            running = [i for i in self.svc_insts[s] if self.up[i]]
            if not running:
                continue
            used = sum(self.cpu_acc[i] - last.get(i, 0.0) for i in running)
            for i in self.svc_insts[s]:
                last[i] = self.cpu_acc[i]
            util = used / (AUTOSCALE_PERIOD * sum(self.cores[i] for i in running))
            desired = math.ceil(len(running) * util / svc.autoscale.target_cpu - 1e-9)
            low = max(svc.autoscale.min, self.scale_floor.get(s, 0))
            desired = max(low, min(max(svc.autoscale.max, low), desired))
            idle = sorted(i for i in self.svc_insts[s] if not self.up[i] and i in self.spare and i not in self.drained)
            if desired > len(running) and idle:
                low_streak = 0
                n_new = min(desired - len(running), len(idle))
                self._event(svc.name, "scale", "SuccessfulRescale",
                            f"New size: {len(running) + n_new}; reason: cpu resource utilization (percentage of request) above target",
                            type="Normal", involvedObject={"kind": "HorizontalPodAutoscaler", "name": svc.name},
                            replicas=len(running) + n_new, utilization=round(util, 3))  # fmt: skip
                for i in idle[:n_new]:
                    self._start(i, "Started")
            elif desired < len(running):
                low_streak += 1
                if low_streak >= 4:  # the HPA's scale-down stabilisation window
                    low_streak = 0
                    i = max(running)
                    self._event(svc.name, "scale", "SuccessfulRescale",
                                f"New size: {len(running) - 1}; reason: All metrics below target",
                                type="Normal", involvedObject={"kind": "HorizontalPodAutoscaler", "name": svc.name},
                                replicas=len(running) - 1, utilization=round(util, 3))  # fmt: skip
                    if i in self.routable[s]:
                        self.routable[s].remove(i)
                    self.retiring.add(i)
                    self._event(self.inst_names[i], "k8s", "Killing", f"Stopping container {svc.name}", type="Normal",
                                involvedObject={"kind": "Pod", "name": self.inst_names[i]})
                    # graceful termination: in-flight requests finish before the container stops
                    env.timeout(30.0).callbacks.append(lambda _e, i=i: self._retire(i))
            else:
                low_streak = 0


def _bump(version: str) -> str:
    parts = version.lstrip("v").split(".")
    try:
        nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    except ValueError:
        return version + "-next"
    nums[1] += 1
    nums[2] = 0
    return "v" + ".".join(str(n) for n in nums[:3])


def _events_processed(env: simpy.Environment) -> int:
    # simpy numbers every scheduled event from one counter; what is left in the queue at the
    # end was scheduled but not processed
    counter = getattr(env, "_eid", None)
    scheduled = next(counter) if counter is not None else 0
    return int(scheduled - len(getattr(env, "_queue", ())))


def run_engine(
    topology: SimTopology,
    faults: list[ResolvedFault],
    arrivals: Arrivals,
    rng: np.random.Generator,
    *,
    duration: float,
) -> EngineResult:
    """Run one simulation and return its :class:`EngineResult`."""
    return Engine(topology, faults, arrivals, rng, duration=duration).run()
