"""aisre.simulator: a simpy fault simulator producing labelled multi-signal Cases.

Requests flow through a real microservice topology (Online Boutique, Sock Shop, Train Ticket,
your own YAML/JSON, or ``random:N``); faults change how services behave and the symptoms spread
along the call graph. Every run is a :class:`aisre.case.Case` with its ground truth::

    from aisre.simulator import simulate, export_rcaeval
    case = simulate("online-boutique", ["cpu:cartservice@300+300*0.9"], duration=600, rate=20, seed=1)
    export_rcaeval(case, "out")

:class:`SimulatorTwin` is the digital twin: a run that remediation steps act on while it runs.

See ``docs/faults.md`` for the fault catalogue and the topology format.
"""

from __future__ import annotations

from .engine import CAUSES, RECORD_FIELDS
from .export import RCAEVAL_METRICS, export_case, export_rcaeval, write
from .faults import DEFAULT_INTENSITY, FAULT_KINDS, FaultSpec, ResolvedFault, parse_fault, resolve_faults
from .runner import simulate
from .scenarios import DEFAULT_SCENARIO, SCENARIOS, run_scenario
from .suite import fault_suite, parse_suite
from .telemetry import METRICS, NOISE_ALERTS, alertmanager_payloads
from .topology import BUILTIN_TOPOLOGIES, SimTopology, load_topology, parse_topology, random_topology
from .twin import Mitigation, SimulatorTwin, time_to_mitigation

__all__ = [
    "BUILTIN_TOPOLOGIES",
    "CAUSES",
    "DEFAULT_INTENSITY",
    "DEFAULT_SCENARIO",
    "FAULT_KINDS",
    "METRICS",
    "NOISE_ALERTS",
    "RCAEVAL_METRICS",
    "RECORD_FIELDS",
    "SCENARIOS",
    "FaultSpec",
    "Mitigation",
    "ResolvedFault",
    "SimTopology",
    "SimulatorTwin",
    "alertmanager_payloads",
    "export_case",
    "export_rcaeval",
    "fault_suite",
    "load_topology",
    "parse_fault",
    "parse_suite",
    "parse_topology",
    "random_topology",
    "resolve_faults",
    "run_scenario",
    "simulate",
    "time_to_mitigation",
    "write",
]
