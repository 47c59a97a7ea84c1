"""The ``aisre`` command: a thin click layer over the public API.

Output is for people by default; ``--json`` prints one JSON document on stdout. Errors print
one line, ``aisre: error: ...``, on stderr (``--debug`` adds the traceback). Exit codes: 0 done,
1 a verdict that needs a person, 2 blocked, 3 an error.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from aisre.errors import AisreError, UsageError

__all__ = ["main"]

EXIT_OK, EXIT_NEEDS_PERSON, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2, 3


class _Exit(Exception):
    """Carries a verdict's exit code out of a command without click printing anything."""

    def __init__(self, code: int) -> None:
        self.code = code


def _emit(ctx: click.Context, doc: Any, text: str | Callable[[], str]) -> None:
    """Print *doc* as JSON under ``--json``, else the human *text*."""
    if ctx.obj.get("json"):
        click.echo(json.dumps(doc, indent=1, default=_json_default, allow_nan=False))
    else:
        click.echo(text() if callable(text) else text)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Path):
        return str(obj)
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _load_one(path: str, fmt: str | None = None) -> Any:
    """Return the single Case at *path* (a Case folder, a dataset case, or a simulator run)."""
    from aisre.datasets import load

    cases = load(path, fmt)
    first = next(cases, None)
    if first is None:
        raise UsageError(f"{path}: holds no case")
    if next(cases, None) is not None:
        raise UsageError(f"{path}: holds several cases; name one case folder")
    return first


def _load_topology(spec: str | None) -> Any:
    if spec is None:
        return None
    p = Path(spec)
    if p.suffix == ".json" and p.is_file():
        from aisre.case import Topology

        try:
            return Topology.from_dict(json.loads(p.read_text()), path=str(p))
        except json.JSONDecodeError as exc:
            from aisre.errors import DataError

            raise DataError(f"not valid JSON ({exc.msg})", path=p) from exc
    from aisre.simulator import load_topology

    return load_topology(spec).to_topology()


# --------------------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--debug", is_flag=True, help="Show the traceback on errors.")
@click.version_option(package_name="aisre")
@click.pass_context
def cli(ctx: click.Context, as_json: bool, debug: bool) -> None:
    """aisre: an AI SRE workbench. Triage, one timeline, causal root cause, governed remediation."""
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json
    ctx.obj["debug"] = debug


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option("--scenario", default=None, help="A built-in simulator scenario (default: cart-cpu).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Report folder (default ./reports/<incident-id>/).")
@click.pass_context
def demo(ctx: click.Context, scenario: str | None, out: str | None) -> None:
    """Run the main job end to end on a built-in scenario and print the report's path."""
    from aisre.demo import run_demo

    result = run_demo(scenario, out=out)
    _emit(ctx, result.to_dict(), result.summary)


# --------------------------------------------------------------------------- simulate


@cli.command()
@click.option("--topology", "topology", required=True, help="online-boutique, sock-shop, train-ticket, random:N or a YAML/JSON file.")
@click.option("--fault", "faults", multiple=True, metavar="KIND:TARGET[@START][+DURATION][*INTENSITY]", help="A fault to inject (repeatable).")
@click.option("--duration", type=float, default=600.0, show_default=True, help="Simulated seconds.")
@click.option("--rate", type=float, default=50.0, show_default=True, help="Requests per second at the entry points.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["case", "rcaeval"]), default="case", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.pass_context
def simulate(ctx: click.Context, topology: str, faults: Sequence[str], duration: float, rate: float, seed: int, fmt: str, out: str) -> None:
    """Run a fault-injection experiment on the simulator; no --fault is normal operation."""
    from aisre.simulator import simulate as run, write

    case = run(topology, list(faults), duration=duration, rate=rate, seed=seed)
    path = write(case, out, format=fmt)
    doc = {"path": str(path), "case": case.id, "truth": case.truth.to_dict() if case.truth else None,
           "metrics": len(case.metrics), "logs": len(case.logs), "spans": len(case.spans),
           "events": len(case.events), "alerts": len(case.alerts)}
    _emit(ctx, doc, lambda: f"wrote {path}\n{case!r}")


# --------------------------------------------------------------------------- load


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["case", "rcaeval", "rcd", "nezha", "petshop"]), default=None, help="The layout (detected when absent).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Where to write Case folders.")
@click.pass_context
def load(ctx: click.Context, path: str, fmt: str | None, out: str) -> None:
    """Convert a dataset to Case folders; a bad case is reported and the rest go on."""
    from aisre.datasets.batch import convert

    written, failures = convert(path, out, fmt)
    doc = {"written": [str(w) for w in written], "failures": [f.to_dict() for f in failures]}
    _emit(ctx, doc, lambda: "\n".join([f"wrote {len(written)} cases to {out}"]
                                      + [f"failed: {f.path}: {f.message}" for f in failures]))
    if failures and not written:
        raise _Exit(EXIT_ERROR)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--id", "case_id", default=None, help="The case id (default: derived from the paths).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The Case folder to write.")
@click.pass_context
def ingest(ctx: click.Context, files: Sequence[str], case_id: str | None, out: str) -> None:
    """Merge live payloads (Alertmanager, Prometheus, OTLP, Jaeger, kubectl events, GitHub
    deployments; format detected per file) into one Case folder."""
    from aisre.case import save_case
    from aisre.datasets.ingest import ingest_files

    case = ingest_files([Path(f) for f in files], case_id=case_id)
    path = save_case(case, out)
    _emit(ctx, {"path": str(path), "case": case.id, "files": case.meta.get("files")},
          lambda: f"wrote {path}\n{case!r}")


# --------------------------------------------------------------------------- investigate


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--method", default="aisre", show_default=True, help="A ranker from the registry.")
@click.option("--topology", default=None, help="A topology for cases that have none (built-in name or JSON file).")
@click.option("--top", "top", type=int, default=5, show_default=True)
@click.pass_context
def investigate(ctx: click.Context, path: str, method: str, topology: str | None, top: int) -> None:
    """Rank root causes of one case, with the evidence in words."""
    from aisre.rank import get_ranker

    case = _load_one(path)
    if topology and case.topology is None:
        case.topology = _load_topology(topology)
    ranking = get_ranker(method).rank(case)
    ranking.hypotheses = ranking.hypotheses[:top]
    _emit(ctx, {"case": case.id, "ranking": ranking.to_dict()}, lambda: _explain(case, ranking))


def _explain(case: Any, ranking: Any) -> str:
    lines = [f"case {case.id} ({case.system or 'unknown system'})", str(ranking)]
    for i, h in enumerate(ranking.hypotheses, 1):
        lines.append(f"\n#{i} {h.entity}" + (f" ({h.fault})" if h.fault else "") + f", confidence {h.confidence:.2f}")
        lines.extend(f"   - {e.text or e.signal}" for e in h.evidence[:6])
    return "\n".join(lines)


# --------------------------------------------------------------------------- timeline and triage


@cli.command()
@click.argument("path", type=click.Path())
@click.pass_context
def timeline(ctx: click.Context, path: str) -> None:
    """Print the unified timeline of one case."""
    from aisre.timeline import timeline as build

    tl = build(_load_one(path))
    _emit(ctx, tl.to_dict(), lambda: str(tl))


@cli.command()
@click.argument("alerts", nargs=-1, required=True, type=click.Path())
@click.option("--topology", default=None, help="A topology (built-in name or JSON file) for grouping.")
@click.pass_context
def triage(ctx: click.Context, alerts: Sequence[str], topology: str | None) -> None:
    """Turn Alertmanager webhook payloads into incidents."""
    from aisre.datasets.ingest import dedupe_alerts, parse_alertmanager
    from aisre.triage import triage as run

    parsed = dedupe_alerts([a for path in alerts for a in parse_alertmanager(Path(path))])
    result = run(parsed, _load_topology(topology))
    _emit(ctx, result.to_dict(), lambda: str(result))


# --------------------------------------------------------------------------- remediation


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--policy", type=click.Path(dir_okay=False), default=None, help="A Cedar policy file.")
@click.option("--env", default="production", show_default=True)
@click.option("--method", default="aisre", show_default=True)
@click.pass_context
def plan(ctx: click.Context, path: str, policy: str | None, env: str, method: str) -> None:
    """Propose a remediation plan with the policy decision per step."""
    from aisre.rank import get_ranker
    from aisre.remediate import plan as make_plan, plan_to_json

    case = _load_one(path)
    result = make_plan(case, get_ranker(method).rank(case), policy=policy, env=env)
    _emit(ctx, plan_to_json(result), lambda: str(result))


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--executor", type=click.Choice(["dry-run", "simulator", "kubernetes"]), default="dry-run", show_default=True)
@click.option("--context", "context_name", default=None, help="The kubernetes context (required to execute on kubernetes).")
@click.option("--execute", is_flag=True, help="Really carry out allowed steps (default: dry run).")
@click.option("--approve", "approve_step", default=None, metavar="STEP", help="Approve a step that waits for a person.")
@click.option("--by", "approver", default=None, help="Who approves (with --approve).")
@click.option("--policy", type=click.Path(dir_okay=False), default=None)
@click.option("--env", default="production", show_default=True)
@click.pass_context
def remediate(ctx: click.Context, path: str, executor: str, context_name: str | None, execute: bool,
              approve_step: str | None, approver: str | None, policy: str | None, env: str) -> None:
    """Execute what policy allows; steps that need a person wait for --approve."""
    from aisre.rank import get_ranker
    from aisre.remediate import DryRunExecutor, KubernetesExecutor, approve, plan as make_plan, remediate as run
    from aisre.remediate import remediation_to_json

    if approve_step and not approver:
        raise UsageError("--approve needs --by NAME")
    if executor == "kubernetes" and execute and not context_name:
        raise UsageError("--execute on kubernetes needs --context NAME")
    case = _load_one(path)
    if executor == "kubernetes":
        runner = KubernetesExecutor(context_name, allow_execute=execute)
    elif executor == "simulator":
        from aisre.simulator.twin import SimulatorTwin

        runner = SimulatorTwin.from_case(case)
    else:
        runner = DryRunExecutor()
    proposed = make_plan(case, get_ranker("aisre").rank(case), policy=policy, env=env)
    if approve_step:
        approve(proposed, approve_step, approver)
    outcomes = run(case, proposed, executor=runner, execute=execute,
                   approvals={approve_step: approver} if approve_step else None, policy=policy, env=env)
    doc = remediation_to_json(proposed, outcomes)
    _emit(ctx, doc, lambda: "\n".join([str(proposed)] + [f"{o.step_id} {o.status} {o.message}" for o in outcomes]))
    if any(o.status == "waiting" for o in outcomes):
        raise _Exit(EXIT_NEEDS_PERSON)


@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the hash chain; exit 1 and name the record on tampering."""
    from aisre.remediate import AuditLog

    problems = AuditLog().verify()
    _emit(ctx, {"ok": not problems, "problems": [str(p) for p in problems]},
          lambda: "audit log intact" if not problems else "\n".join(str(p) for p in problems))
    if problems:
        raise _Exit(EXIT_NEEDS_PERSON)


@audit.command("show")
@click.option("--case", "case_id", default=None, help="Only the records of this case.")
@click.pass_context
def audit_show(ctx: click.Context, case_id: str | None) -> None:
    """List the audit records, oldest first."""
    from aisre.remediate import AuditLog, format_records

    records = AuditLog().records(case_id=case_id)
    _emit(ctx, {"records": [r.to_dict() for r in records]}, lambda: format_records(records) or "no records")


# --------------------------------------------------------------------------- gate and memory (issues 8, 9)


@cli.group(invoke_without_command=True)
@click.option("--repo", type=click.Path(), default=None, help="The git repository.")
@click.option("--base", default=None, help="The base revision (the target branch).")
@click.option("--head", default=None, help="The head revision (the change).")
@click.option("--owners", type=click.Path(dir_okay=False), default=None, help="An ownership YAML or CODEOWNERS file.")
@click.option("--topology", default=None, help="The dependency graph (built-in name, YAML or JSON file).")
@click.option("--freeze", type=click.Path(dir_okay=False), default=None, help="Change-freeze windows (YAML/JSON).")
@click.option("--markdown", is_flag=True, help="Print a Markdown body for a pull-request comment.")
@click.pass_context
def gate(ctx: click.Context, repo: str | None, base: str | None, head: str | None, owners: str | None,
         topology: str | None, freeze: str | None, markdown: bool) -> None:
    """Score a change's risk before it deploys (exit 0 allow, 1 canary or approval, 2 block)."""
    if ctx.invoked_subcommand is not None:
        return
    if not (repo and base and head):
        raise UsageError("aisre gate needs --repo DIR --base REV --head REV (or a subcommand: train, evaluate)")
    from aisre.gate import run_gate

    topo = topology if topology and topology.endswith(".json") else _load_topology(topology)
    result = run_gate(repo, base, head, owners=owners, topology=topo, freeze=freeze)
    if markdown and not ctx.obj.get("json"):
        click.echo(result.markdown())
    else:
        _emit(ctx, result.to_dict(), lambda: str(result))
    if result.exit_code:
        raise _Exit(result.exit_code)


@gate.command("train")
@click.option("--data", type=click.Path(dir_okay=False), default=None, help="An ApacheJIT-format CSV (default: the shared ApacheJIT).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Where to write the model (default: $AISRE_HOME/models/gate.json).")
@click.pass_context
def gate_train(ctx: click.Context, data: str | None, out: str | None) -> None:
    """Fit the change-risk model on labelled commits."""
    from aisre.gate import train

    doc = train(data, out)
    _emit(ctx, doc, lambda: "\n".join(f"{k}: {v}" for k, v in doc.items() if not isinstance(v, (dict, list))))


@gate.command("evaluate")
@click.option("--data", type=click.Path(dir_okay=False), default=None, help="An ApacheJIT-format CSV (default: the shared ApacheJIT).")
@click.pass_context
def gate_evaluate(ctx: click.Context, data: str | None) -> None:
    """Fit on the earlier commits and measure on the later ones: AUC, recall at 10 and 20 %, Brier."""
    from aisre.gate import evaluate

    doc = evaluate(data)
    _emit(ctx, doc, lambda: "\n".join(f"{k:>13}: {v:.4g}" if isinstance(v, float) else f"{k:>13}: {v}" for k, v in doc.items()))


@cli.group()
def memory() -> None:
    """Incident memory: search, confirm, correct, export, import."""


@memory.command("search")
@click.argument("path", type=click.Path())
@click.option("--k", "k", type=int, default=5, show_default=True)
@click.pass_context
def memory_search(ctx: click.Context, path: str, k: int) -> None:
    """Past incidents similar to this case, each with why it is similar."""
    from aisre.memory import Memory
    from aisre.rank import get_ranker

    case = _load_one(path)
    mem = Memory()
    matches = mem.similar(case, get_ranker("aisre").rank(case), k=k)
    for problem in mem.problems:
        click.echo(f"aisre: warning: {problem}", err=True)
    _emit(ctx, {"matches": [m.to_dict() for m in matches]}, lambda: "\n".join(map(str, matches)) or "no similar incident")


@memory.command("remember")
@click.argument("path", type=click.Path())
@click.pass_context
def memory_remember(ctx: click.Context, path: str) -> None:
    """Store this case's investigation; prints the incident id to confirm or correct."""
    from aisre.memory import Memory
    from aisre.rank import get_ranker

    case = _load_one(path)
    mem = Memory()
    ranking = mem.prior(case, get_ranker("aisre").rank(case))
    incident = mem.remember(case, ranking)
    _emit(ctx, {"incident": incident, "ranking": ranking.to_dict()}, lambda: f"remembered {incident}\n{ranking}")


@memory.command("confirm")
@click.argument("incident")
@click.option("--by", "by", required=True, help="Who confirms.")
@click.pass_context
def memory_confirm(ctx: click.Context, incident: str, by: str) -> None:
    """Confirm the first hypothesis of a remembered incident."""
    from aisre.memory import Memory

    Memory().confirm(incident, by=by)
    _emit(ctx, {"incident": incident, "confirmed_by": by}, f"confirmed {incident}")


@memory.command("correct")
@click.argument("incident")
@click.option("--service", required=True, help="The true root-cause service.")
@click.option("--fault", default=None, help="The true fault kind.")
@click.option("--by", "by", required=True, help="Who corrects.")
@click.pass_context
def memory_correct(ctx: click.Context, incident: str, service: str, fault: str | None, by: str) -> None:
    """Correct the root cause of a remembered incident; later retrievals learn it."""
    from aisre.memory import Memory

    Memory().correct(incident, service, fault, by=by)
    _emit(ctx, {"incident": incident, "service": service, "fault": fault, "by": by}, f"corrected {incident}: {service}")


@memory.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def memory_export(ctx: click.Context, file: str) -> None:
    """Write every remembered incident as JSON lines."""
    from aisre.memory import Memory

    n = Memory().export(file)
    _emit(ctx, {"exported": n, "file": file}, f"exported {n} incidents to {file}")


@memory.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def memory_import(ctx: click.Context, file: str) -> None:
    """Read incidents from JSON lines; duplicates are skipped, corrupt lines reported."""
    from aisre.memory import Memory

    result = Memory().import_(file)
    for line in result.get("errors", []):
        click.echo(f"aisre: warning: {line}", err=True)
    _emit(ctx, result, lambda: ", ".join(f"{k} {v}" for k, v in result.items() if k != "errors"))


# --------------------------------------------------------------------------- postmortem


@cli.command()
@click.argument("path", required=False, type=click.Path())
@click.option("--since", default=None, metavar="TIME",
              help="Every case under PATH (default $AISRE_HOME/incidents) closed at or after TIME (ISO 8601 UTC or unix s).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Report folder (default ./reports/<incident-id>/).")
@click.option("--method", default="aisre", show_default=True)
@click.pass_context
def postmortem(ctx: click.Context, path: str | None, since: str | None, out: str | None, method: str) -> None:
    """Write the postmortem (.ipynb, .html, .md) for one case, or for every case closed since TIME."""
    from aisre.report import incident_slug, write_postmortem

    if since is None:
        if path is None:
            raise UsageError("give a case PATH, or --since TIME")
        report = write_postmortem(_load_one(path), out=out, method=method)
        _emit(ctx, report.to_dict(), lambda: f"wrote {report.html}")
        return
    from aisre.datasets.batch import iter_load
    from aisre.store import home

    cutoff = _parse_time(since)
    root = Path(path) if path else home() / "incidents"
    written, failures = [], []
    for item in iter_load(root):
        if not hasattr(item, "window"):
            failures.append(f"{item.path}: {item.message}")
            continue
        if item.window[1] < cutoff:
            continue
        try:
            folder = Path(out) / incident_slug(item.id) if out else None
            written.append(str(write_postmortem(item, out=folder, method=method).html))
        except AisreError as exc:
            failures.append(f"{item.id}: {exc}")
    for line in failures:
        click.echo(f"aisre: error: {line}", err=True)
    _emit(ctx, {"written": written, "failures": failures}, lambda: "\n".join(f"wrote {w}" for w in written) or "no case closed since then")
    if failures:
        raise _Exit(EXIT_ERROR)


def _parse_time(text: str) -> float:
    """Return unix seconds for ISO 8601 (UTC when no zone) or a number."""
    from datetime import datetime, timezone

    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is neither ISO 8601 nor unix seconds") from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


# --------------------------------------------------------------------------- benchmark


class _DefaultRca(click.Group):
    """``aisre benchmark PATH...`` means ``aisre benchmark rca PATH...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["rca", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_DefaultRca)
def benchmark() -> None:
    """Accuracy and time per case (rca), and the other harnesses."""


@benchmark.command("rca")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--methods", default="aisre,nsigma,baro", show_default=True, help="Comma-separated rankers.")
@click.option("--delay", type=float, default=0.0, show_default=True, help="Shift the detection time by S seconds.")
@click.option("--topology", default=None, help="A topology for cases that have none.")
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--scheduler", default=None, help="A dask.distributed scheduler address.")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None, help="Exit 1 on a drop against this earlier --json result.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None, help="Write the result here.")
@click.pass_context
def benchmark_rca(ctx: click.Context, paths: Sequence[str], methods: str, delay: float, topology: str | None,
                  workers: int, scheduler: str | None, baseline: str | None, json_file: str | None) -> None:
    """Root-cause accuracy (AC@1/3/5, Avg@5) and time per case, per dataset and method.

    PATH is a dataset or Case folder, or simulator:TOPOLOGY[:PER_KIND] for a seeded suite of
    every fault kind on a built-in topology."""
    from aisre.bench.rca import compare, run_benchmark

    sources: list[Any] = []
    for path in paths:
        if path.startswith("simulator:"):  # a seeded suite of every fault kind on a built-in topology
            from aisre.simulator import fault_suite, parse_suite

            sources.extend(fault_suite(**parse_suite(path)))
        else:
            sources.append(path)
    result = run_benchmark(sources, [m.strip() for m in methods.split(",") if m.strip()], delay=delay,
                           topology=topology, workers=workers, scheduler=scheduler,
                           progress=sys.stderr.isatty())
    doc = result.to_dict()
    if json_file:
        Path(json_file).write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default))
    _emit(ctx, doc, lambda: f"{result.table()}\n\nAC@1 per fault kind\n{result.fault_table()}")
    if baseline:
        regressions = compare(result, baseline)
        for line in regressions:
            click.echo(f"aisre: regression: {line}", err=True)
        if regressions:
            raise _Exit(EXIT_NEEDS_PERSON)


@benchmark.command("triage")
@click.option("--quick", is_flag=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None)
@click.pass_context
def benchmark_triage(ctx: click.Context, quick: bool, seed: int, json_file: str | None) -> None:
    """Alert reduction and grouping precision/recall on simulator alert storms."""
    from aisre.bench.triage import run_triage_benchmark

    doc = run_triage_benchmark(quick=quick, seed=seed)
    if json_file:
        Path(json_file).write_text(json.dumps(doc, indent=1, default=_json_default))
    _emit(ctx, doc, lambda: "\n".join(f"{k:>18}: {v:.4g}" if isinstance(v, float) else f"{k:>18}: {v}"
                                      for k, v in doc.items() if isinstance(v, (int, float))))


@benchmark.command("gate")
@click.option("--quick", is_flag=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None)
@click.pass_context
def benchmark_gate(ctx: click.Context, quick: bool, seed: int, json_file: str | None) -> None:
    """Change-risk gate: ApacheJIT AUC and recall, prevention on a simulated change stream."""
    from aisre.bench.gate import run_gate_benchmark

    doc = run_gate_benchmark(quick=quick, seed=seed)
    if json_file:
        Path(json_file).write_text(json.dumps(doc, indent=1, default=_json_default))
    _emit(ctx, doc, lambda: json.dumps(doc, indent=1, default=_json_default))


@benchmark.command("memory")
@click.option("--quick", is_flag=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None)
@click.pass_context
def benchmark_memory(ctx: click.Context, quick: bool, seed: int, workers: int, json_file: str | None) -> None:
    """AC@1 and time to mitigation with and without memory, on recurring and novel incidents."""
    from aisre.bench.memory import run_memory_benchmark

    doc = run_memory_benchmark(quick=quick, seed=seed, workers=workers, progress=sys.stderr.isatty())
    doc.pop("rows", None)
    if json_file:
        Path(json_file).write_text(json.dumps(doc, indent=1, default=_json_default))
    _emit(ctx, doc, lambda: json.dumps({k: doc[k] for k in ("recurring", "novel") if k in doc}, indent=1))
    rec, nov = doc["recurring"], doc["novel"]
    if rec["ac1_with"] <= rec["ac1_without"] or nov["ac1_with"] < nov["ac1_without"]:
        raise _Exit(EXIT_NEEDS_PERSON)


@benchmark.command("scorecard")
@click.option("--quick", is_flag=True, help="The quick suite (under 2 minutes; what CI runs).")
@click.option("--seeds", default=None, help="Comma-separated seeds (default: the suite's).")
@click.option("--workers", type=int, default=None, help="Local dask workers (default 2).")
@click.option("--scheduler", default=None, help="A dask.distributed scheduler address.")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None, help="Exit 1 on a drop against this earlier result.")
@click.option("--tolerance", type=float, default=0.05, show_default=True)
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None)
@click.option("--html", "html_file", type=click.Path(dir_okay=False), default=None, help="An offline HTML report.")
@click.pass_context
def benchmark_scorecard(ctx: click.Context, quick: bool, seeds: str | None, workers: int | None, scheduler: str | None,
                        baseline: str | None, tolerance: float, json_file: str | None, html_file: str | None) -> None:
    """The open AI SRE scorecard: prevention, resolution, memory and governance."""
    from aisre.bench import compare_scorecard, run_scorecard, save_scorecard, scorecard_text, write_scorecard_html

    if workers is not None and scheduler:
        raise UsageError("give --workers or --scheduler, not both")
    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()] if seeds else None
    except ValueError:
        raise UsageError(f"--seeds {seeds!r} must be whole numbers separated by commas") from None
    doc = run_scorecard(quick=quick, seeds=seed_list, workers=workers, scheduler=scheduler, progress=sys.stderr.isatty())
    if json_file:
        save_scorecard(doc, json_file)
    if html_file:
        write_scorecard_html(doc, html_file)
    _emit(ctx, doc, lambda: scorecard_text(doc))
    if baseline:
        regressions = compare_scorecard(doc, baseline, tolerance)
        for line in regressions:
            click.echo(f"aisre: regression: {line}", err=True)
        if regressions:
            raise _Exit(EXIT_NEEDS_PERSON)


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (0, 1, 2 or 3)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="aisre", standalone_mode=False)
    except _Exit as verdict:
        return verdict.code
    except click.exceptions.Exit as done:  # --help, --version
        return int(done.exit_code or 0)
    except click.Abort:
        click.echo("aisre: error: aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        click.echo(f"aisre: error: {exc.format_message()}", err=True)
        return EXIT_ERROR
    except AisreError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"aisre: error: {exc}", err=True)
        return EXIT_ERROR
    except (OSError, MemoryError) as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"aisre: error: {exc}", err=True)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
