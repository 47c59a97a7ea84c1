"""Executors: the Kubernetes executor's exact commands and patches, and its guard rails."""

from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest

from aisre.case import Action, Case, Step, Topology
from aisre.errors import ExecutorError, UsageError
from aisre.remediate import DryRunExecutor, Executor, KubernetesExecutor, get_action, get_executor, resolve_target


def shop() -> Case:
    t = Topology()
    t.add_node("frontend", tier="critical", replicas=3)
    t.add_node("cartservice", replicas=2, flags=["new-ui"])
    t.add_edge("frontend", "cartservice")
    return Case("c", topology=t)


def step(name: str, entity: str = "cartservice", **params) -> Step:
    case = shop()
    return Step("s1", get_action(name).build(case, resolve_target(case, entity), **params))


def test_both_executors_satisfy_the_protocol():
    assert isinstance(DryRunExecutor(), Executor) and isinstance(KubernetesExecutor("ctx"), Executor)
    assert get_executor("dry-run").name == "dry-run"
    assert get_executor("kubernetes", context="x").context == "x"
    with pytest.raises(UsageError, match="unknown executor"):
        get_executor("simulatorr")


@pytest.mark.parametrize(
    ("st", "command"),
    [
        (lambda: step("scale"), "kubectl --context prod -n shop scale deployment/cartservice --replicas=4"),
        (lambda: step("restart"), "kubectl --context prod -n shop rollout restart deployment/cartservice"),
        (lambda: step("restart", "cartservice-1"), "kubectl --context prod -n shop delete pod/cartservice-1"),
        (lambda: step("toggle_flag"),
         """kubectl --context prod -n shop patch configmap/cartservice-flags --type merge -p '{"data":{"new-ui":"false"}}'"""),
        (lambda: step("shift_traffic", "cartservice-1"),
         "kubectl --context prod -n shop label pod/cartservice-1 aisre.io/serving=false --overwrite"),
        (lambda: step("shift_traffic", "cartservice-1", restore="cartservice-1"),
         "kubectl --context prod -n shop label pod/cartservice-1 aisre.io/serving=true --overwrite"),
        (lambda: step("rate_limit", rps=40),
         "kubectl --context prod -n shop annotate ingress/cartservice nginx.ingress.kubernetes.io/limit-rps=40 --overwrite"),
    ],
)  # fmt: skip
def test_dry_run_prints_the_exact_kubectl_command_without_a_cluster(st, command):
    out = KubernetesExecutor("prod", namespace="shop").execute(st(), dry_run=True)
    assert out.message == command and out.ok and not out.executed
    assert out.after["command"] == command and out.after["patch"]["name"]


def test_rollback_command_names_the_revision():
    s = Step("s1", Action("rollback", "cartservice", {"service": "cartservice", "to_revision": "7"}))
    assert KubernetesExecutor("prod").command(s) == [
        "kubectl", "--context", "prod", "-n", "default", "rollout", "undo", "deployment/cartservice", "--to-revision=7",
    ]  # fmt: skip


def test_real_execution_needs_the_flag_and_a_context():
    s = step("scale")
    with pytest.raises(ExecutorError, match="--execute and --context"):
        KubernetesExecutor("prod").execute(s, dry_run=False)
    with pytest.raises(ExecutorError, match="--execute and --context"):
        KubernetesExecutor(None, allow_execute=True).execute(s, dry_run=False)


def test_real_scale_patches_the_deployment_scale():
    apps = MagicMock()
    apps.read_namespaced_deployment_scale.return_value = SimpleNamespace(spec=SimpleNamespace(replicas=2))
    ex = KubernetesExecutor("prod", namespace="shop", allow_execute=True, apis={"apps": apps, "core": MagicMock()})
    out = ex.execute(step("scale"), dry_run=False)
    apps.patch_namespaced_deployment_scale.assert_called_once_with("cartservice", "shop", {"spec": {"replicas": 4}})
    assert out.executed and out.ok and out.before == {"replicas": 2} and out.after == {"replicas": 4}


def test_real_drain_and_its_undo_label_the_pod():
    core = MagicMock()
    ex = KubernetesExecutor("prod", namespace="shop", allow_execute=True, apis={"apps": MagicMock(), "core": core})
    out = ex.execute(step("shift_traffic", "cartservice-1"), dry_run=False)
    core.patch_namespaced_pod.assert_called_with("cartservice-1", "shop", {"metadata": {"labels": {"aisre.io/serving": "false"}}})
    assert out.after == {"aisre.io/serving": "false"}
    out = ex.execute(step("shift_traffic", "cartservice-1", restore="cartservice-1"), dry_run=False)
    core.patch_namespaced_pod.assert_called_with("cartservice-1", "shop", {"metadata": {"labels": {"aisre.io/serving": "true"}}})
    assert out.before == {"aisre.io/serving": "false"} and out.after == {"aisre.io/serving": "true"}


def test_real_rollback_copies_the_previous_revisions_template():
    apps = MagicMock()
    apps.read_namespaced_deployment.return_value = {
        "metadata": {"annotations": {"deployment.kubernetes.io/revision": "3"}},
        "spec": {"selector": {"match_labels": {"app": "cartservice"}}},
    }
    def rs(rev: str, image: str) -> dict:
        return {"metadata": {"annotations": {"deployment.kubernetes.io/revision": rev}},
                "spec": {"template": {"metadata": {"labels": {"app": "cartservice", "pod-template-hash": "x"}},
                                      "spec": {"containers": [{"image": image}]}}}}  # fmt: skip
    apps.list_namespaced_replica_set.return_value = {"items": [rs("1", "v1"), rs("2", "v2"), rs("3", "v3")]}
    ex = KubernetesExecutor("prod", allow_execute=True, apis={"apps": apps})
    s = Step("s1", Action("rollback", "cartservice", {"service": "cartservice"}))
    out = ex.execute(s, dry_run=False)
    body = apps.patch_namespaced_deployment.call_args.args[2]
    assert body["spec"]["template"]["spec"]["containers"][0]["image"] == "v2"
    assert body["spec"]["template"]["metadata"]["labels"] == {"app": "cartservice"}
    assert out.before == {"revision": 3} and out.after == {"revision": 2}
    apps.list_namespaced_replica_set.assert_called_once_with("default", label_selector="app=cartservice")


def test_api_failure_is_an_executor_error():
    apps = MagicMock()
    apps.read_namespaced_deployment_scale.side_effect = RuntimeError("403 Forbidden")
    ex = KubernetesExecutor("prod", allow_execute=True, apis={"apps": apps})
    with pytest.raises(ExecutorError, match="403 Forbidden"):
        ex.execute(step("scale"), dry_run=False)


def test_actions_kubernetes_cannot_express_are_executor_errors():
    with pytest.raises(ExecutorError, match="absolute 'rps'"):
        KubernetesExecutor("prod").execute(step("rate_limit"), dry_run=True)
    with pytest.raises(ExecutorError, match="cannot carry out"):
        KubernetesExecutor("prod").execute(Step("s1", Action("reboot", "x")), dry_run=True)


def test_missing_client_is_an_executor_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_k8s(name, *a, **k):
        if name == "kubernetes" or name.startswith("kubernetes."):
            raise ImportError("No module named 'kubernetes'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_k8s)
    with pytest.raises(ExecutorError, match=r"aisre\[k8s\]"):
        KubernetesExecutor("prod", allow_execute=True).execute(step("scale"), dry_run=False)
