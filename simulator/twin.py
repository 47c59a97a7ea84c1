"""The simulator as a digital twin: a remediation executor whose actions change the running model.

:class:`SimulatorTwin` runs a fault-injection experiment step by step. Advance it to a moment
(:meth:`~SimulatorTwin.run_until`, or :meth:`~SimulatorTwin.from_case` which replays a simulated
Case up to its detection), then carry out a remediation step on the *running* model with
:meth:`~SimulatorTwin.execute`: the twin measures the entry services' SLIs over the last
:data:`SLO_WINDOW` seconds, applies the change, simulates :data:`OBSERVE` seconds more and
measures again. It satisfies ``aisre.remediate.Executor`` structurally (``name`` and
``execute(step, *, dry_run) -> Outcome``) using only the model types of :mod:`aisre.case`.

What each action does to the model (the catalogue's names and params):

- ``scale`` (``replicas``): starts new instances (healthy: a fault bound to the old pods stays
  with them) on the least loaded host without a noisy neighbour, or retires the highest ones. On
  a service with an autoscaler, the autoscaler may take the added replicas away again when their
  CPU is low, as Kubernetes' HPA does to a manual ``kubectl scale``.
- ``restart`` (``instance``; none: every instance, one at a time): the pod is deleted and starts
  again after ``RESTART_DELAY``; its process state is cleared: leaked heap (the leak is treated
  as state a restart clears, not as code that leaks again), exhausted sockets, leaked pool
  connections, a crash loop. CPU, disk, network and code faults survive a restart.
- ``rollback``: ends the service's bad ``deploy`` and ``config`` faults (versions, capacity and
  error rates back to the previous revision); on a service with no such fault it changes nothing
  but the record. A roll forward (``roll_forward``, the inverse) only records the change: the
  twin cannot bring back a fault that has ended.
- ``toggle_flag`` (``flag``, ``enabled``): switching a flag off ends the service's faults behind
  that flag (``#FLAG`` in the fault spec) and its code-level ``error`` faults that declare no
  flag (the faulty path is taken to sit behind whichever flag guards the endpoint); a fault
  behind another flag stays. Switching a flag on only records it.
- ``shift_traffic`` (``away_from`` an instance or a host): an instance leaves the load balancer;
  a host is cordoned and drained (its pods start again elsewhere). Shifting a whole service to a
  failover is not modelled (:class:`~aisre.errors.ExecutorError`). The inverse (``restore``)
  puts a drained instance back in the load balancer, or uncordons a host (its pods stay where
  they went, as with ``kubectl uncordon``).
- ``rate_limit`` (``rps``, or ``fraction`` of the observed load): a token bucket in front of the
  service rejects the excess at once (``rate_limited``, not retried); ``remove`` lifts the limit.

A fault behind a feature flag (``error:paymentservice/Charge#charge-v2``) announces the flag
change at its start: an event of kind ``config`` (reason ``FeatureFlagChanged``, attributes
``flag`` and ``enabled``), the evidence remediation reads to propose switching it off.

The SLO is the entry endpoints' good-event ratio (a request is good when it succeeds within its
endpoint's ``slo`` seconds, as the simulator's burn-rate alert counts it) against
:data:`SLO_TARGET`; ``burn`` is the bad ratio over the error budget, and the SLO is *met* over a
window when ``burn <= 1``. :meth:`~SimulatorTwin.recovery` says when the SLO came back (for good,
with ``lasting``). :func:`time_to_mitigation` runs a scenario with and without an
automatic action at detection (+ :data:`DECISION_LATENCY`) and returns the time until the SLO
is back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Action, Case, Outcome, Step
from aisre.errors import ExecutorError, SpecError

from .engine import OK, READY_DELAY, RESTART_DELAY, Engine
from .faults import FaultSpec, ResolvedFault, parse_fault
from .runner import prepare
from .telemetry import SLO_TARGET
from .topology import SimTopology

__all__ = [
    "DECISION_LATENCY",
    "HOLD",
    "MITIGATION_FAULTS",
    "OBSERVE",
    "SLO_WINDOW",
    "Mitigation",
    "SimulatorTwin",
    "scenario_fault",
    "time_to_mitigation",
]

SLO_WINDOW = 30.0
"""Seconds of entry traffic an SLI is measured over (the trailing window)."""

OBSERVE = 120.0
"""Seconds the twin simulates after an action before it measures the effect."""

HOLD = 30.0
"""Seconds the SLO must stay met for an incident to count as mitigated."""

DECISION_LATENCY = 30.0
"""Seconds from detection to an automatic action taking effect: ranking, planning, the policy
decision, the dry run and the API call (an automatic path; a person paged is minutes)."""

ACTIONS = ("scale", "restart", "rollback", "toggle_flag", "shift_traffic", "rate_limit")
"""Actions the twin can carry out (the remediation catalogue's built-ins)."""


MITIGATION_FAULTS = (
    "deploy:productcatalogservice",
    "error:paymentservice/Charge#charge-v2",
    "crash:cartservice",
    "mem:cartservice",
    "socket:currencyservice",
    "config:productcatalogservice",
    "cpu:frontend*1.0",
    "loss:currencyservice",
    "delay:currencyservice",
)
"""Simulated incidents on Online Boutique that the time-to-mitigation benchmarks share
(benchmarks/bench_twin.py, benchmarks/bench_remediation.py), so their figures compare.

One per fault kind that breaks the entry SLO at the benchmarks' load (20 requests/s), each at a
target where it does: an incident is a broken SLO, and a fault that breaks none leaves nothing
to mitigate. At that load a CPU hog on a back-end service, a noisy neighbour on any node, a
disk writer and a leaked pool do not (the work per request is milliseconds), nor, or not
reliably, a memory leak on a best-effort service (its callers treat it as optional) and a config
change on a low-traffic one; so the CPU hog is on the entry service. The code-level error sits behind feature flag ``charge-v2`` (switched on at
the fault's start)."""


def scenario_fault(spec: str, start: float, duration: float) -> str:
    """Return fault *spec* (one of :data:`MITIGATION_FAULTS`, say) starting at *start* and lasting
    *duration* seconds, its intensity and flag kept.

    Raises:
        SpecError: for a spec that does not parse.
    """
    return str(replace(parse_fault(spec), start=float(start), duration=float(duration)))


class SimulatorTwin:
    """A simulation run that remediation can act on while it runs.

    Arguments are those of :func:`aisre.simulator.simulate`; *window* is the SLI window and
    *observe* how long :meth:`execute` simulates after an action. Times are simulated seconds
    from the run's start (``start_time`` is unix time 0 of the run). Every random number comes
    from the seed, so the same seed and the same actions at the same times give the same run;
    before its first action the twin is exactly the run :func:`simulate` makes.

    Raises:
        SpecError: for a bad topology, fault spec or setting (see :func:`simulate`).
    """

    name = "simulator"

    def __init__(
        self,
        topology: str | Path | Mapping[str, Any] | SimTopology,
        faults: Iterable[str | FaultSpec] = (),
        *,
        duration: float = 1800.0,
        rate: float = 20.0,
        seed: int = 0,
        start_time: float = 1_700_000_000.0,
        trace_sample: float = 0.1,
        window: float = SLO_WINDOW,
        observe: float = OBSERVE,
    ) -> None:
        for value, field in ((window, "window"), (observe, "observe")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise SpecError(f"{field} must be a positive number of seconds, got {value!r}", field=field)
        self._run = prepare(topology, faults, duration=duration, rate=rate, seed=seed, start_time=start_time,
                            trace_sample=trace_sample)  # fmt: skip
        self.engine: Engine = self._run.engine
        self.window = float(window)
        self.observe = float(observe)
        self.actions: list[dict[str, Any]] = []
        eng = self.engine
        self._slo = np.array([e.slo for s in self._run.topo.services for e in s.endpoints])
        self._entry = sorted({eng.ep_svc[e] for e in eng.entry_eps})
        self._scan = 0  # attempts finished so far that _roots has read
        self._done = np.empty((0, 5))
        self._final: Case | None = None
        self.engine.start()
        for f in self._run.faults:
            if f.flag is not None:
                eng.env.process(self._announce_flag(f))

    def _announce_flag(self, f: ResolvedFault) -> Any:
        """At *f*'s start, record the flag change that put its faulty code path live."""
        # The engine's fault processes know nothing of flags, so the twin announces them: a Case
        # from simulate() lacks this event until the engine emits it at the fault's start.
        yield self.engine.env.timeout(f.start)
        self.engine._event(f.service, "config", "FeatureFlagChanged", f"flag {f.flag} of {f.service} switched on",
                           flag=f.flag, enabled=True, author="jdoe")  # fmt: skip

    # ------------------------------------------------------------------ building and moving
    @classmethod
    def from_case(cls, case: Case, *, at: float | None = None, topology: Any = None, **overrides: Any) -> SimulatorTwin:
        """Return the twin of a simulated *case*, advanced to *at* (unix seconds; default the
        case's ``detected_at``). *topology* replaces the recorded one (needed when the case
        came from a mapping rather than a built-in name, ``random:N`` or a file).

        Raises:
            SpecError: when the case was not made by the simulator or its topology cannot be found.
        """
        sim = (case.meta or {}).get("simulator")
        if not isinstance(sim, Mapping):
            raise SpecError(f"case {case.id} was not made by the simulator (no meta['simulator'])", field="case")
        if topology is None:
            source = str(sim.get("topology_source") or "")
            name = str(sim.get("topology"))
            topology = source if source and Path(source).is_file() else name
        faults = [f["spec"] for f in (case.meta.get("faults") or [])]
        kw = {k: sim[k] for k in ("duration", "rate", "seed", "start_time", "trace_sample") if k in sim}
        kw.update(overrides)
        twin = cls(topology, faults, **kw)
        when = case.detected_at if at is None else at
        if when is not None:
            twin.run_until(float(when) - twin.start_time)
        return twin

    @property
    def start_time(self) -> float:
        """Unix time of the run's second 0."""
        return float(self._run.settings["start_time"])

    @property
    def duration(self) -> float:
        """Length of the run in simulated seconds."""
        return float(self._run.settings["duration"])

    @property
    def now(self) -> float:
        """Simulated seconds since the run's start."""
        return float(self.engine.env.now)

    @property
    def faults(self) -> list[ResolvedFault]:
        """The run's faults, resolved (times in simulated seconds)."""
        return list(self._run.faults)

    def run_until(self, t: float) -> None:
        """Simulate up to second *t* of the run (at most its end; never backwards)."""
        self.engine.advance(t)

    def finish(self) -> None:
        """Simulate to the end of the run."""
        self.engine.advance(self.duration)

    # ------------------------------------------------------------------ measuring
    def _roots(self) -> np.ndarray:
        """Finished entry requests so far (in the order they finished): rows of (start, end,
        endpoint, status, service)."""
        new = self.engine.finished(self._scan)
        self._scan += len(new)
        if len(new):
            self._done = np.concatenate([self._done, _sli_rows(new[new["parent"] < 0])])
        return self._done

    def sli(self, end: float | None = None, window: float | None = None, *, service: str | None = None) -> dict[str, Any]:
        """Return the SLIs over the *window* seconds before *end* (default: now, :attr:`window`).

        Without *service*: the entry requests (the SLO): ``requests``, ``error_ratio``,
        ``latency_p90`` (seconds), ``good_ratio``, ``burn`` and ``met``. With *service*: the
        same measured over every attempt served by that service (its own latency and errors).

        Raises:
            SpecError: for an unknown service.
        """
        end = self.now if end is None else float(end)
        window = self.window if window is None else float(window)
        if service is None:
            rows = self._roots()
        else:
            s = self._service_index(service)
            recs = self.engine.finished()
            rows = _sli_rows(recs[(recs["service"] == s) & (recs["served"] != 0)])
        sel = rows[(rows[:, 1] > end - window) & (rows[:, 1] <= end)]
        n = int(sel.shape[0])
        out: dict[str, Any] = {"time": self.start_time + end, "window": window, "requests": n}
        if service is not None:
            out["service"] = service
        if n == 0:
            out.update(error_ratio=0.0, latency_p90=0.0, good_ratio=1.0, burn=0.0, met=True)
            return out
        lat = sel[:, 1] - sel[:, 0]
        failed = sel[:, 3] != OK
        bad = failed | (lat > self._slo[sel[:, 2].astype(np.int64)])
        bad_ratio = float(bad.mean())
        burn = bad_ratio / (1.0 - SLO_TARGET)
        out.update(
            error_ratio=round(float(failed.mean()), 6),
            latency_p90=round(float(np.sort(lat)[max(0, math.ceil(0.9 * n) - 1)]), 6),
            good_ratio=round(1.0 - bad_ratio, 6),
            burn=round(burn, 4),
            met=bool(burn <= 1.0),
        )
        return out

    def slo_series(self) -> pd.DataFrame:
        """Return the SLO second by second up to now: ``time`` (simulated s), ``requests`` and
        ``bad`` finishing in that second, the trailing-window ``burn`` and whether it is ``met``."""
        T = int(math.ceil(self.now))
        rows = self._roots()
        sec = np.clip(rows[:, 1].astype(np.int64), 0, max(T - 1, 0))
        lat = rows[:, 1] - rows[:, 0]
        bad = (rows[:, 3] != OK) | (lat > self._slo[rows[:, 2].astype(np.int64)])
        total = np.bincount(sec, minlength=T)[:T].astype(np.float64)
        badc = np.bincount(sec[bad], minlength=T)[:T].astype(np.float64)
        w = int(round(self.window))
        ct = np.concatenate([[0.0], np.cumsum(total)])
        cb = np.concatenate([[0.0], np.cumsum(badc)])
        hi = np.arange(1, T + 1)
        lo = np.maximum(hi - w, 0)
        tot_w = ct[hi] - ct[lo]
        bad_w = cb[hi] - cb[lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            burn = np.where(tot_w > 0, bad_w / np.maximum(tot_w, 1.0) / (1.0 - SLO_TARGET), 0.0)
        return pd.DataFrame({"time": np.arange(T, dtype=np.float64), "requests": total, "bad": badc, "burn": burn,
                             "met": burn <= 1.0})  # fmt: skip

    def recovery(self, since: float, *, hold: float = HOLD, lasting: bool = False) -> tuple[float | None, bool]:
        """Return ``(t, breached)``: the first second at or after *since* from which the SLO
        stays met for *hold* seconds after it was broken (``None`` when it has not come back
        by now), and whether it was broken at all after *since* (if not, ``t`` is *since*).

        With *lasting*, ``t`` is when the SLO came back for good: the start of the met stretch
        that reaches now, when it lasts at least *hold* seconds (an incident that flaps, such
        as a pod OOM-killed every few minutes, is not over at its first quiet half minute).
        """
        series = self.slo_series()
        met = series["met"].to_numpy()
        a = int(math.floor(since))
        broken = np.flatnonzero(~met[a:])
        if broken.size == 0:
            return float(since), False
        h = int(round(hold))
        if lasting:
            t = a + int(broken[-1]) + 1
            return (float(t), True) if len(met) - t >= h else (None, True)
        run = 0
        for t in range(a + int(broken[0]), len(met)):
            run = run + 1 if met[t] else 0
            if run >= h:
                return float(t - h + 1), True
        return None, True

    # ------------------------------------------------------------------ acting
    def _service_index(self, name: str) -> int:
        idx = self.engine.svc_index.get(name)
        if idx is None:
            raise SpecError(f"unknown service {name!r} in topology {self._run.topo.name!r}", field="service")
        return idx

    def _resolve(self, action: Action) -> tuple[str, Callable[[], dict[str, Any]]]:
        """Return (what the action does in words, the function that does it).

        Raises:
            ExecutorError: for an action or target the twin cannot carry out.
        """
        eng = self.engine
        p = dict(action.params or {})
        name = action.name
        if name not in ACTIONS:
            raise ExecutorError(f"the simulator twin cannot carry out {name!r}; it knows {', '.join(ACTIONS)}")
        target = str(p.get("service") or action.target)
        inst = p.get("instance") or (action.target if action.target in eng.inst_index else None)
        if target in eng.inst_index and target not in eng.svc_index:
            target = eng.svc_names[eng.inst_svc[eng.inst_index[target]]]
        if target not in eng.svc_index and name != "shift_traffic":
            raise ExecutorError(f"the simulator twin has no service {target!r} to {name}")
        s = eng.svc_index.get(target, -1)
        if name == "scale":
            try:
                replicas = int(p["replicas"]) if p.get("replicas") is not None else 2 * max(1, len(eng.serving(s)))
            except (TypeError, ValueError) as exc:
                raise ExecutorError(f"scale needs an integer replicas, got {p.get('replicas')!r}") from exc
            if replicas < 1:
                raise ExecutorError(f"scale needs at least 1 replica, got {replicas}")

            def do() -> dict[str, Any]:
                before, after = eng.scale_to(s, replicas)
                return {"replicas": [before, after]}

            return f"scale {target} from {len(eng.serving(s))} to {replicas} replicas", do
        if name == "restart":
            if inst is not None:
                if inst not in eng.inst_index:
                    raise ExecutorError(f"the simulator twin has no instance {inst!r} to restart")
                i = eng.inst_index[str(inst)]

                def do() -> dict[str, Any]:
                    eng.restart(i)
                    return {"restarted": [str(inst)]}

                return f"restart instance {inst}", do

            def do() -> dict[str, Any]:
                insts = eng.serving(s)
                eng.env.process(self._rolling(insts))
                return {"restarted": [eng.inst_names[i] for i in insts]}

            return f"restart {target}, one instance at a time", do
        if name in ("rollback", "toggle_flag"):
            return self._code_change(name, target, p)
        if name == "shift_traffic":
            if p.get("restore"):
                return self._restore(str(p["restore"]))
            away = str(p.get("away_from") or action.target)
            if away in eng.inst_index:
                i = eng.inst_index[away]

                def do() -> dict[str, Any]:
                    eng.drain(i)
                    return {"drained": [away]}

                return f"take instance {away} out of the load balancer", do
            if away in eng.host_names:
                h = eng.host_names.index(away)

                def do() -> dict[str, Any]:
                    moved = eng.drain_host(h)
                    return {"drained": [eng.inst_names[i] for i in moved], "cordoned": away}

                return f"cordon and drain host {away}", do
            raise ExecutorError(f"the simulator twin models no failover for {away!r}; shift traffic away from an instance or a host")
        # rate_limit
        if p.get("remove"):

            def do() -> dict[str, Any]:
                eng.set_rate_limit(s, None)
                return {"rps": None}

            return f"remove the rate limit on {target}", do
        rps = p.get("rps")
        fraction = float(p.get("fraction") or 0.8)
        if rps is not None and (not isinstance(rps, (int, float)) or rps <= 0):
            raise ExecutorError(f"rate_limit needs a positive rps, got {rps!r}")

        def do() -> dict[str, Any]:
            limit = float(rps) if rps is not None else max(1.0, fraction * self._arrival_rate(s))
            eng.set_rate_limit(s, limit)
            return {"rps": round(limit, 3)}

        return f"rate-limit {target} to " + (f"{rps} requests/s" if rps is not None else f"{fraction:.0%} of its load"), do

    def _code_change(self, name: str, target: str, p: Mapping[str, Any]) -> tuple[str, Callable[[], dict[str, Any]]]:
        """Return (words, function) for a rollback or a flag switch on service *target*."""
        eng = self.engine
        flag = p.get("flag")
        if name == "toggle_flag":
            off = not bool(p.get("enabled"))
            words = f"switch flag {flag or '?'} of {target} {'off' if off else 'on'}"

            def ends(f: ResolvedFault) -> bool:
                return off and (f.flag == flag if f.flag is not None else f.kind == "error")
        elif p.get("roll_forward"):
            words = f"roll {target} forward again"

            def ends(f: ResolvedFault) -> bool:
                return False
        else:
            words = f"roll {target} back to its previous revision"

            def ends(f: ResolvedFault) -> bool:
                return f.kind in ("deploy", "config")

        def do() -> dict[str, Any]:
            ended = [f for f in eng.active_faults() if f.service == target and ends(f)]
            for f in ended:
                eng.end_fault(f)
            if name == "toggle_flag":
                eng._event(target, "config", "FeatureFlagToggled", f"flag {flag or '?'} of {target} switched "
                           f"{'on' if p.get('enabled') else 'off'}", flag=flag, enabled=bool(p.get("enabled")), author="aisre")  # fmt: skip
            elif p.get("roll_forward"):
                eng._event(target, "remediation", "RollForward", f"deployment/{target} rolled forward to the revision rolled back",
                           author="aisre")  # fmt: skip
            elif not ended:
                eng._event(target, "remediation", "RollbackNoChange", f"deployment/{target} has no newer revision to roll back",
                           author="aisre")  # fmt: skip
            return {"ended_faults": [f.spec for f in ended]}

        return words, do

    def _restore(self, what: str) -> tuple[str, Callable[[], dict[str, Any]]]:
        """Return (words, function) that undo a traffic shift: a drained instance goes back into
        the load balancer (when it is still running), a cordoned host is uncordoned.

        Raises:
            ExecutorError: when *what* is neither an instance nor a host of the run.
        """
        eng = self.engine
        if what in eng.inst_index:
            i = eng.inst_index[what]

            def do() -> dict[str, Any]:
                eng.drained.discard(i)
                s = eng.inst_svc[i]
                back = eng.up[i] and i not in eng.retiring and i not in eng.spare
                if back and i not in eng.routable[s]:
                    eng.routable[s].append(i)
                    eng.routable[s].sort()
                msg = f"pod {what} back in the load balancer" if back else f"pod {what} is gone; nothing to put back"
                eng._event(what, "remediation", "TrafficRestored", msg, author="aisre")
                return {"restored": [what] if back else []}

            return f"put instance {what} back in the load balancer", do
        if what in eng.host_names:
            h = eng.host_names.index(what)

            def do() -> dict[str, Any]:
                eng.cordoned.discard(h)
                eng._event(what, "k8s", "NodeSchedulable", f"Node {what} status is now: NodeSchedulable", type="Normal",
                           involvedObject={"kind": "Node", "name": what}, author="aisre")  # fmt: skip
                return {"uncordoned": what}

            return f"uncordon host {what}", do
        raise ExecutorError(f"the simulator twin has no instance or host {what!r} to put back")

    def _arrival_rate(self, s: int) -> float:
        now = self.now
        lo = now - self.window
        recs = self.engine.finished()
        n = int(np.count_nonzero((recs["service"] == s) & (recs["start"] > lo) & (recs["start"] <= now) & (recs["attempt"] == 0)))
        return n / min(self.window, max(now, 1.0))

    def _rolling(self, insts: list[int]) -> Any:
        for i in insts:
            self.engine.restart(i)
            yield self.engine.env.timeout(RESTART_DELAY + READY_DELAY)

    def apply(self, action: Action) -> dict[str, Any]:
        """Carry out *action* on the running model now and return what changed.

        Raises:
            ExecutorError: for an action or target the twin cannot carry out, or a finished run.
        """
        if self.now >= self.duration:
            raise ExecutorError(f"the twin's run has ended (second {self.duration:g}); nothing can change any more")
        words, do = self._resolve(action)
        details = do()
        self.actions.append({"time": self.start_time + self.now, "action": action.name, "target": action.target,
                             "what": words, **details})  # fmt: skip
        return {"what": words, **details}

    def execute(self, step: Step, *, dry_run: bool = False) -> Outcome:
        """Carry out *step* on the twin (or, with *dry_run*, check and describe it) and return the
        Outcome: ``before``/``after`` hold the entry SLIs (:meth:`sli`) at the action and after
        :attr:`observe` seconds; ``ok`` is whether the SLO is met by then. ``after`` also says
        what changed and ``recovered_after``: seconds from the action until the SLO came back
        for good within the observation (``None`` if it did not).

        Raises:
            ExecutorError: for an action or target the twin cannot carry out, or a finished run.
        """
        action = step.action
        words, _ = self._resolve(action)
        before = self.sli()
        if dry_run:
            return Outcome(step.id, executed=False, ok=True, dry_run=True,
                           message=f"would {words} at second {self.now:.0f} of the run", before=before,
                           after={"would": words})  # fmt: skip
        t_act = self.now
        details = self.apply(action)
        self.run_until(t_act + self.observe)
        after = self.sli()
        series = self.slo_series()
        met = series["met"].to_numpy()[int(math.ceil(t_act)) :]
        bad = np.flatnonzero(~met)
        rec = None
        if after["met"]:
            rec = float(bad[-1] + 1) if bad.size else 0.0
        after.update(details)
        after["recovered_after"] = rec
        ok = bool(after["met"])
        verdict = (f"SLO met after {rec:.0f} s" if ok else f"SLO still broken after {self.now - t_act:.0f} s "
                   f"(burn {after['burn']:.1f})")  # fmt: skip
        return Outcome(step.id, executed=True, ok=ok, dry_run=False, message=f"{words}: {verdict}", before=before, after=after)

    # ------------------------------------------------------------------ telemetry
    def case(self, *, case_id: str | None = None) -> Case:
        """Return the Case of the run so far (all telemetry up to now, alerts, truth).

        A finished run uses the run's own generator for the telemetry, so a twin run to the end
        without actions gives the Case :func:`simulate` gives; a snapshot mid-run uses a
        generator of its own, so taking it does not change what happens next.
        """
        done = self.now >= self.duration
        if done and self._final is not None and case_id in (None, self._final.id):
            return self._final
        seed = self._run.settings["seed"]
        # the run's own generator is used once, for the finished run; snapshots get their own
        rng = None if done and self._final is None else np.random.default_rng([seed, int(self.now * 1000), 7])
        res = self.engine.result()
        case = self._run.assemble(res, case_id=case_id, rng=rng, duration=max(self.now, 1.0))
        if done and self._final is None:
            self._final = case
        if self.actions:
            case.meta["twin"] = {"actions": list(self.actions)}
            topo = case.topology
            eng = self.engine
            for i in range(len(self._run.topo.placement()), eng.n_inst):
                s = eng.svc_names[eng.inst_svc[i]]
                if topo is not None and eng.inst_names[i] not in topo:
                    topo.add_node(eng.inst_names[i], "instance", service=s, initial=False)
                    if eng.inst_host[i] >= 0:
                        topo.add_edge(eng.inst_names[i], eng.host_names[eng.inst_host[i]], "runs_on")
        return case


# --------------------------------------------------------------------------- time to mitigation


@dataclass(frozen=True)
class Mitigation:
    """One scenario run with and without an automatic action.

    Times are seconds from the first fault's start; ``ttm_*`` is the time until the SLO was
    back (held :data:`HOLD` s), or until the run's end when it never came back
    (``recovered_*`` False). ``breached`` says whether the SLO broke at all without action.
    ``detected`` and ``acted`` are seconds from the fault's start too (``acted`` None: no action).
    """

    faults: tuple[str, ...]
    seed: int
    breached: bool
    ttm_without: float
    recovered_without: bool
    ttm_with: float
    recovered_with: bool
    detected: float | None
    acted: float | None
    actions: tuple[str, ...]
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


Chooser = Callable[[Case, SimulatorTwin, list[Outcome]], "Step | Action | None"]


def _sli_rows(recs: np.ndarray) -> np.ndarray:
    """Rows of (start, end, endpoint, status, service), as floats, of finished attempts."""
    return np.column_stack([recs[f].astype(np.float64) for f in ("start", "end", "endpoint", "status", "service")]).reshape(-1, 5)


def _as_step(choice: Step | Action, k: int) -> Step:
    return choice if isinstance(choice, Step) else Step(id=f"twin{k + 1}", action=choice)


def time_to_mitigation(
    topology: str | Path | Mapping[str, Any] | SimTopology,
    faults: Iterable[str | FaultSpec],
    action: Step | Action | Chooser | None,
    *,
    duration: float = 1800.0,
    rate: float = 20.0,
    seed: int = 0,
    decision_latency: float = DECISION_LATENCY,
    rounds: int = 1,
    hold: float = HOLD,
    lasting: bool = False,
    **twin_options: Any,
) -> Mitigation:
    """Run a scenario twice, without and with automatic remediation, and return both times to
    mitigation.

    The incident is detected when :func:`simulate` would say (the first alert after the fault,
    the Case's ``detected_at``). With remediation, *action* takes effect *decision_latency*
    seconds after detection; *action* is a fixed Step or Action, or a chooser called at
    detection as ``action(case_so_far, twin, outcomes_so_far)`` returning the step to carry out
    (``None``: nothing). With *rounds* > 1 a step that leaves the SLO broken after the twin's
    observation is followed by another choice, *decision_latency* later. *hold* and *lasting*
    say when the SLO counts as back (:meth:`SimulatorTwin.recovery`).

    Raises:
        SpecError: for a bad topology, fault or setting.
        ExecutorError: when the chosen action cannot be carried out on the twin.
    """
    faults = list(faults)
    kw = dict(duration=duration, rate=rate, seed=seed, **twin_options)
    base = SimulatorTwin(topology, faults, **kw)
    if not base.faults:
        raise SpecError("time to mitigation needs at least one fault", field="faults")
    t0 = min(f.start for f in base.faults)
    base.finish()
    detected_at = base.case().detected_at
    t_rec, breached = base.recovery(t0, hold=hold, lasting=lasting)
    ttm_without = (t_rec if t_rec is not None else base.duration) - t0
    specs = tuple(f.spec for f in base.faults)
    if detected_at is None or action is None:
        return Mitigation(specs, seed, breached, ttm_without, t_rec is not None, ttm_without, t_rec is not None,
                          None, None, (), False)  # fmt: skip
    detected = detected_at - base.start_time
    twin = SimulatorTwin(topology, faults, **kw)
    outcomes: list[Outcome] = []
    taken: list[str] = []
    decide_at = detected
    acted = None
    for k in range(max(1, rounds)):
        if decide_at + decision_latency >= twin.duration:
            break
        twin.run_until(decide_at)
        choice = action(twin.case(), twin, list(outcomes)) if callable(action) else action
        if choice is None:
            break
        step = _as_step(choice, k)
        twin.run_until(decide_at + decision_latency)
        acted = twin.now if acted is None else acted
        out = twin.execute(step, dry_run=False)
        outcomes.append(out)
        taken.append(f"{step.action.name}:{step.action.target}")
        if out.ok or callable(action) is False:
            break
        decide_at = twin.now
    twin.finish()
    t_rec2, _ = twin.recovery(t0, hold=hold, lasting=lasting)
    ttm_with = (t_rec2 if t_rec2 is not None else twin.duration) - t0
    return Mitigation(specs, seed, breached, ttm_without, t_rec is not None, ttm_with, t_rec2 is not None,
                      detected - t0, None if acted is None else acted - t0, tuple(taken),
                      bool(outcomes and outcomes[-1].ok))  # fmt: skip
