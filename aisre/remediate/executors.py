"""Executors: what carries a step out. One seam, :class:`Executor`, and two implementations here.

An executor has a ``name`` and ``execute(step, *, dry_run) -> Outcome``. With ``dry_run=True`` it
changes nothing and says what it would do; with ``dry_run=False`` it acts and reports the state
before and after. It raises only :class:`~aisre.errors.ExecutorError`. The simulator's twin
(``aisre.simulator.twin``) satisfies the protocol structurally.

- :class:`DryRunExecutor` records what would be done and never changes anything.
- :class:`KubernetesExecutor` maps each catalogue action onto the exact ``kubectl`` command and
  the API patch behind it; a dry run prints them without needing a cluster, and real execution
  needs ``allow_execute=True`` and a kubeconfig context name. The official ``kubernetes`` client
  is imported only then (``pip install 'aisre[k8s]'``).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from aisre.case import Action, Outcome, Step
from aisre.errors import ExecutorError, UsageError

__all__ = [
    "DryRunExecutor",
    "Executor",
    "KubernetesExecutor",
    "describe",
    "get_executor",
]


@runtime_checkable
class Executor(Protocol):
    """Carries out remediation steps.

    ``execute`` returns an :class:`~aisre.case.Outcome` whose ``executed`` says whether anything
    changed, ``ok`` whether the step did what it should, and ``before``/``after`` the state it
    saw; it raises only :class:`~aisre.errors.ExecutorError`.
    """

    name: str

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        """Carry out (or, with *dry_run*, describe) *step* and return what happened."""
        ...


def describe(action: Action) -> str:
    """Return one line saying what *action* does, in words."""
    p = action.params or {}
    svc = p.get("service", action.target)
    match action.name:
        case "scale":
            return f"scale {svc} from {p.get('from_replicas', '?')} to {p.get('replicas', '?')} replicas"
        case "rollback":
            to = p.get("to_revision")
            return f"roll {svc} back" + (f" to revision {to}" if to else " to its previous revision") + (
                f" (undoing {p.get('change')})" if p.get("change") else ""
            )
        case "restart":
            return f"restart instance {p['instance']}" if p.get("instance") else f"restart {svc}, one instance at a time"
        case "toggle_flag":
            return f"switch flag {p.get('flag')} of {svc} {'on' if p.get('enabled') else 'off'}"
        case "shift_traffic":
            if p.get("restore"):
                return f"put {p['restore']} back in the load balancer"
            return f"shift {p.get('percent', 100)}% of traffic away from {p.get('away_from', svc)} to {p.get('to', 'elsewhere')}"
        case "rate_limit":
            if p.get("remove"):
                return f"remove the rate limit on {svc}"
            limit = f"{p['rps']} requests/s" if p.get("rps") else f"{int(100 * float(p.get('fraction', 1)))}% of its current load"
            return f"rate-limit {svc} to {limit}"
    return f"{action.name} {action.target} {json.dumps(p, sort_keys=True, default=str)}"


class DryRunExecutor:
    """Changes nothing: records each call and says what would be done.

    ``calls`` lists ``(step_id, action, target, dry_run)`` in call order.
    """

    name = "dry-run"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, bool]] = []

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        """Return an Outcome that changed nothing and says what *step* would do."""
        self.calls.append((step.id, step.action.name, step.action.target, dry_run))
        text = describe(step.action)
        return Outcome(
            step_id=step.id,
            executed=False,
            ok=True,
            dry_run=True,
            message=f"would {text}" if dry_run else f"dry-run executor: nothing changed (would {text})",
            before={},
            after={"would": text},
        )


_SERVING_LABEL = "aisre.io/serving"
_RATE_ANNOTATION = "nginx.ingress.kubernetes.io/limit-rps"


class KubernetesExecutor:
    """Carries steps out on a Kubernetes cluster through the official client.

    Each service is a Deployment of the same name in *namespace* (a step's ``namespace`` param
    overrides it); feature flags live in the ConfigMap ``<service>-flags``; draining an instance
    sets the label ``aisre.io/serving=false``, which the Service's selector must require
    (``aisre.io/serving: "true"``); rate limits are the ingress-nginx ``limit-rps`` annotation
    on the Ingress named after the service.

    A dry run needs no cluster and returns the exact ``kubectl`` command and API patch in the
    Outcome (``message`` and ``after``). Real execution needs ``allow_execute=True`` and a
    *context* name; *apis* injects ``{"apps": AppsV1Api, "core": CoreV1Api, "networking":
    NetworkingV1Api}`` (tests), else they are built from the kubeconfig.
    """

    name = "kubernetes"

    def __init__(
        self,
        context: str | None = None,
        *,
        namespace: str = "default",
        allow_execute: bool = False,
        kubeconfig: str | None = None,
        apis: Mapping[str, Any] | None = None,
    ) -> None:
        self.context = context
        self.namespace = namespace
        self.allow_execute = allow_execute
        self.kubeconfig = kubeconfig
        self._apis = dict(apis) if apis is not None else None

    # ------------------------------------------------------------------ what would be done

    def _ns(self, action: Action) -> str:
        return str((action.params or {}).get("namespace") or self.namespace)

    def command(self, step: Step) -> list[str]:
        """Return the ``kubectl`` argv that carries *step* out.

        Raises:
            ExecutorError: for an action this executor cannot express.
        """
        a, p = step.action, step.action.params or {}
        svc = str(p.get("service", a.target))
        base = ["kubectl"] + (["--context", self.context] if self.context else []) + ["-n", self._ns(a)]
        match a.name:
            case "scale":
                return base + ["scale", f"deployment/{svc}", f"--replicas={int(p['replicas'])}"]
            case "rollback":
                rev = p.get("to_revision")
                return base + ["rollout", "undo", f"deployment/{svc}"] + ([f"--to-revision={rev}"] if rev else [])
            case "restart":
                if p.get("instance"):
                    return base + ["delete", f"pod/{p['instance']}"]
                return base + ["rollout", "restart", f"deployment/{svc}"]
            case "toggle_flag":
                patch = {"data": {str(p["flag"]): "true" if p.get("enabled") else "false"}}
                return base + ["patch", f"configmap/{svc}-flags", "--type", "merge", "-p", json.dumps(patch, separators=(",", ":"))]
            case "shift_traffic":
                away = str(p.get("restore") or p.get("away_from", svc))
                if away == svc:
                    raise ExecutorError(
                        f"shifting all of {svc}'s traffic to {p.get('to')} needs a service mesh route; "
                        "the kubernetes executor only drains single pods"
                    )
                serving = "true" if p.get("restore") else "false"
                return base + ["label", f"pod/{away}", f"{_SERVING_LABEL}={serving}", "--overwrite"]
            case "rate_limit":
                if p.get("remove"):
                    return base + ["annotate", f"ingress/{svc}", f"{_RATE_ANNOTATION}-"]
                if not p.get("rps"):
                    raise ExecutorError(f"rate-limiting {svc} on Kubernetes needs an absolute 'rps' parameter")
                return base + ["annotate", f"ingress/{svc}", f"{_RATE_ANNOTATION}={int(p['rps'])}", "--overwrite"]
        raise ExecutorError(f"the kubernetes executor cannot carry out {a.name!r}")

    def patch(self, step: Step) -> dict[str, Any]:
        """Return the API object and body behind :meth:`command` (``kind``, ``name``, ``body``)."""
        a, p = step.action, step.action.params or {}
        svc = str(p.get("service", a.target))
        ns = self._ns(a)
        match a.name:
            case "scale":
                return {"kind": "Deployment/scale", "namespace": ns, "name": svc, "body": {"spec": {"replicas": int(p["replicas"])}}}
            case "rollback":
                return {"kind": "Deployment", "namespace": ns, "name": svc,
                        "body": {"spec": {"template": f"<pod template of revision {p.get('to_revision') or 'previous'}>"}}}  # fmt: skip
            case "restart":
                if p.get("instance"):
                    return {"kind": "Pod", "namespace": ns, "name": str(p["instance"]), "body": None, "verb": "delete"}
                return {"kind": "Deployment", "namespace": ns, "name": svc,
                        "body": {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "<now>"}}}}}}  # fmt: skip
            case "toggle_flag":
                return {"kind": "ConfigMap", "namespace": ns, "name": f"{svc}-flags",
                        "body": {"data": {str(p["flag"]): "true" if p.get("enabled") else "false"}}}  # fmt: skip
            case "shift_traffic":
                pod, serving = (str(p["restore"]), "true") if p.get("restore") else (str(p.get("away_from")), "false")
                return {"kind": "Pod", "namespace": ns, "name": pod, "body": {"metadata": {"labels": {_SERVING_LABEL: serving}}}}
            case "rate_limit":
                value = None if p.get("remove") else str(p.get("rps"))
                return {"kind": "Ingress", "namespace": ns, "name": svc,
                        "body": {"metadata": {"annotations": {_RATE_ANNOTATION: value}}}}  # fmt: skip
        raise ExecutorError(f"the kubernetes executor cannot carry out {a.name!r}")

    # ------------------------------------------------------------------ doing it

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        """Return the command for *step* (dry run) or carry it out on the cluster.

        Raises:
            ExecutorError: when the action cannot be expressed, execution was not enabled or has
                no context, the client is not installed, or the API call fails.
        """
        cmd = shlex.join(self.command(step))
        patch = self.patch(step)
        if dry_run:
            return Outcome(step.id, executed=False, ok=True, dry_run=True, message=cmd, after={"command": cmd, "patch": patch})
        if not self.allow_execute or not self.context:
            raise ExecutorError("real Kubernetes execution needs --execute and --context NAME; nothing was changed")
        apis = self._clients()
        try:
            before, after = self._apply(apis, step)
        except ExecutorError:
            raise
        except Exception as exc:  # the client raises ApiException, urllib3 and config errors
            raise ExecutorError(f"{cmd} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        return Outcome(step.id, executed=True, ok=True, dry_run=False, message=cmd, before=before, after=after)

    def _clients(self) -> dict[str, Any]:
        if self._apis is not None:
            return self._apis
        try:
            from kubernetes import client, config  # lazily: an optional extra
        except ImportError as exc:
            raise ExecutorError("the kubernetes executor needs the client: pip install 'aisre[k8s]'") from exc
        try:
            api = config.new_client_from_config(config_file=self.kubeconfig, context=self.context)
        except Exception as exc:  # ConfigException, FileNotFoundError, ...
            raise ExecutorError(f"cannot load kubeconfig context {self.context!r}: {exc}") from exc
        self._apis = {"apps": client.AppsV1Api(api), "core": client.CoreV1Api(api), "networking": client.NetworkingV1Api(api)}
        return self._apis

    def _apply(self, apis: Mapping[str, Any], step: Step) -> tuple[dict[str, Any], dict[str, Any]]:
        a, p = step.action, step.action.params or {}
        svc, ns = str(p.get("service", a.target)), self._ns(a)
        apps, core = apis.get("apps"), apis.get("core")
        match a.name:
            case "scale":
                cur = apps.read_namespaced_deployment_scale(svc, ns)
                apps.patch_namespaced_deployment_scale(svc, ns, {"spec": {"replicas": int(p["replicas"])}})
                return {"replicas": _get(cur, "spec", "replicas")}, {"replicas": int(p["replicas"])}
            case "rollback":
                return self._rollback(apps, svc, ns, p.get("to_revision"))
            case "restart":
                if p.get("instance"):
                    core.delete_namespaced_pod(str(p["instance"]), ns)
                    return {"pod": p["instance"]}, {"deleted": p["instance"]}
                stamp = datetime.fromtimestamp(time.time(), tz=UTC).isoformat()
                body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
                apps.patch_namespaced_deployment(svc, ns, body)
                return {}, {"restartedAt": stamp}
            case "toggle_flag":
                name, flag = f"{svc}-flags", str(p["flag"])
                cur = core.read_namespaced_config_map(name, ns)
                value = "true" if p.get("enabled") else "false"
                core.patch_namespaced_config_map(name, ns, {"data": {flag: value}})
                return {flag: (_get(cur, "data") or {}).get(flag)}, {flag: value}
            case "shift_traffic":
                pod, new = (str(p["restore"]), "true") if p.get("restore") else (str(p.get("away_from")), "false")
                core.patch_namespaced_pod(pod, ns, {"metadata": {"labels": {_SERVING_LABEL: new}}})
                return {_SERVING_LABEL: "false" if new == "true" else "true"}, {_SERVING_LABEL: new}
            case "rate_limit":
                net = apis.get("networking")
                cur = net.read_namespaced_ingress(svc, ns)
                old = (_get(cur, "metadata", "annotations") or {}).get(_RATE_ANNOTATION)
                # a merge patch with null removes the annotation: the limit is lifted
                new = None if p.get("remove") else str(int(p["rps"]))
                net.patch_namespaced_ingress(svc, ns, {"metadata": {"annotations": {_RATE_ANNOTATION: new}}})
                return {_RATE_ANNOTATION: old}, {_RATE_ANNOTATION: new}
        raise ExecutorError(f"the kubernetes executor cannot carry out {a.name!r}")

    def _rollback(self, apps: Any, svc: str, ns: str, to_revision: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # apps/v1 has no rollback verb: do what `kubectl rollout undo` does, copy the pod template
        # of the wanted ReplicaSet revision into the Deployment.
        dep = apps.read_namespaced_deployment(svc, ns)
        labels = _get(dep, "spec", "selector", "match_labels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        sets = _get(apps.list_namespaced_replica_set(ns, label_selector=selector), "items") or []
        key = "deployment.kubernetes.io/revision"
        by_rev = {}
        for rs in sets:
            rev = (_get(rs, "metadata", "annotations") or {}).get(key)
            if rev is not None and str(rev).isdigit():
                by_rev[int(rev)] = rs
        current = int((_get(dep, "metadata", "annotations") or {}).get(key, max(by_rev, default=0)))
        if to_revision is not None and str(to_revision).isdigit():
            wanted = int(to_revision)
        else:
            older = [r for r in by_rev if r < current]
            if not older:
                raise ExecutorError(f"deployment/{svc} has no earlier revision to roll back to")
            wanted = max(older)
        rs = by_rev.get(wanted)
        if rs is None:
            raise ExecutorError(f"deployment/{svc} has no revision {wanted}")
        template = _get(rs, "spec", "template")
        template = template.to_dict() if hasattr(template, "to_dict") else dict(template or {})
        meta = template.get("metadata") or {}
        meta["labels"] = {k: v for k, v in (meta.get("labels") or {}).items() if k != "pod-template-hash"}
        template["metadata"] = meta
        apps.patch_namespaced_deployment(svc, ns, {"spec": {"template": template}})
        return {"revision": current}, {"revision": wanted}


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return obj


def get_executor(name: str, **options: Any) -> Executor:
    """Return the executor called *name* (``dry-run``, ``kubernetes``) built with *options*.

    The simulator's twin is built by the caller (``aisre.simulator``), not here: analysis never
    imports a source.

    Raises:
        UsageError: for an unknown name.
    """
    if name == "dry-run":
        return DryRunExecutor()
    if name == "kubernetes":
        return KubernetesExecutor(**options)
    raise UsageError(f"unknown executor {name!r}; known here: dry-run, kubernetes (the simulator twin comes from aisre.simulator)")
