"""Topologies: the built-in systems, the YAML/JSON format, random:N and spec validation."""

from __future__ import annotations

import json

import pytest

from aisre.errors import SpecError
from aisre.simulator import load_topology, random_topology

ONLINE_BOUTIQUE = {
    "frontend", "cartservice", "productcatalogservice", "currencyservice", "paymentservice",
    "shippingservice", "emailservice", "checkoutservice", "recommendationservice", "adservice", "redis-cart",
}  # fmt: skip
SOCK_SHOP = {
    "front-end", "carts", "carts-db", "catalogue", "catalogue-db", "orders", "orders-db",
    "payment", "shipping", "queue-master", "rabbitmq", "user", "user-db",
}  # fmt: skip


def chain(**over: object) -> dict:
    """A -> B -> C -> D, each with one endpoint; A takes the entry traffic."""
    names = ["a", "b", "c", "d"]
    services = []
    for k, n in enumerate(names):
        calls = [{"service": names[k + 1], "endpoint": "op"}] if k + 1 < len(names) else []
        services.append({"name": n, "endpoints": [{"name": "op", "weight": 1 if k == 0 else 0, "calls": calls}]})
    doc = {"name": "chain", "services": services}
    doc.update(over)
    return doc


def test_online_boutique_has_the_real_service_names():
    """Online Boutique is its ten application services plus redis-cart, named as upstream."""
    topo = load_topology("online-boutique")
    assert set(topo.service_names()) == ONLINE_BOUTIQUE
    graph = topo.to_topology()
    assert graph.source == "simulator"
    assert ("checkoutservice", "paymentservice", "calls") in graph.edges("calls")
    assert ("cartservice", "redis-cart", "reads") in graph.edges("reads")
    assert graph.node("redis-cart")["kind"] == "cache"


def test_sock_shop_has_its_databases_and_queue():
    """Sock Shop keeps its databases, RabbitMQ and queue-master."""
    topo = load_topology("sock-shop")
    assert set(topo.service_names()) == SOCK_SHOP
    g = topo.to_topology()
    assert g.node("orders-db")["kind"] == "database"
    assert g.node("rabbitmq")["kind"] == "queue"
    assert ("shipping", "rabbitmq", "publishes") in g.edges("publishes")


def test_train_ticket_has_forty_real_services():
    """Train Ticket has 40+ ts-*-service names of the real system with deep call trees."""
    topo = load_topology("train-ticket")
    names = set(topo.service_names())
    assert len(names) >= 40
    for n in ("ts-travel-service", "ts-order-service", "ts-route-service", "ts-basic-service", "ts-station-service",
              "ts-ticketinfo-service", "ts-price-service", "ts-seat-service", "ts-config-service", "ts-preserve-service",
              "ts-inside-payment-service", "ts-auth-service", "ts-ui-dashboard"):
        assert n in names
    g = topo.to_topology()
    assert "ts-basic-service" in g.callees("ts-ticketinfo-service")


def test_instances_run_on_hosts():
    """Every instance is a node with its service attribute and a runs_on edge to its host."""
    g = load_topology("online-boutique").to_topology()
    assert g.node("cartservice-0")["kind"] == "instance"
    assert g.node("cartservice-0")["service"] == "cartservice"
    assert ("cartservice-0", "node-1", "runs_on") in g.edges("runs_on")


def test_random_topology_is_layered_and_stable():
    """random:N has N services, the same graph for the same N, and no request cycles."""
    a = load_topology("random:200")
    b = random_topology(200)
    assert len(a.services) == 200
    assert a == b
    assert len(load_topology("random:1000").services) == 1000


def test_user_topology_from_yaml_and_json(tmp_path):
    """A user topology loads from YAML or JSON."""
    (tmp_path / "t.json").write_text(json.dumps(chain()))
    (tmp_path / "t.yaml").write_text("name: one\nservices:\n  - {name: web, endpoints: [{name: home, weight: 1}]}\n")
    assert load_topology(tmp_path / "t.json").service_names() == ["a", "b", "c", "d"]
    assert load_topology(str(tmp_path / "t.yaml")).service_names() == ["web"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["services"][0]["endpoints"][0]["calls"][0].update(service="nope"), "services[0].endpoints[0].calls[0].service"),
        (lambda d: d["services"][0]["endpoints"][0]["calls"][0].update(endpoint="nope"), "services[0].endpoints[0].calls[0].endpoint"),
        (lambda d: d["services"][1].update(name="a"), "services[1].name"),
        (lambda d: d["services"][2].update(replicas=-1), "services[2].replicas"),
        (lambda d: d["services"][2].update(capacity=0), "services[2].capacity"),
        (lambda d: d["services"][3]["endpoints"][0].update(work=-0.1), "services[3].endpoints[0].work"),
        (lambda d: d["services"][0]["endpoints"][0].update(weight=-2), "services[0].endpoints[0].weight"),
        (lambda d: d["services"][3]["endpoints"][0].update(calls=[{"service": "a", "endpoint": "op"}]), "services[3].endpoints.calls"),
        (lambda d: d["services"][0].update(hosts=["ghost"]), "services[0].hosts[0]"),
        (lambda d: d["services"][0].update(kind="mainframe"), "services[0].kind"),
    ],
)
def test_bad_topology_names_the_field(mutate, field):
    """Unknown services or endpoints, duplicates, negatives, cycles and unknown hosts name the field."""
    doc = chain()
    mutate(doc)
    with pytest.raises(SpecError) as err:
        load_topology(doc)
    assert err.value.field == field
    assert field in str(err.value)


def test_cycle_message_shows_the_cycle():
    """A call cycle is reported with its path."""
    doc = chain()
    doc["services"][3]["endpoints"][0]["calls"] = [{"service": "b", "endpoint": "op"}]
    with pytest.raises(SpecError, match=r"cycle .*b/op -> c/op -> d/op -> b/op"):
        load_topology(doc)


def test_services_may_call_each_other_through_different_endpoints():
    """A -> B and B -> A is fine when the endpoints do not form a cycle."""
    doc = {"name": "mutual", "services": [
        {"name": "a", "endpoints": [{"name": "x", "weight": 1, "calls": [{"service": "b", "endpoint": "y"}]}, {"name": "z"}]},
        {"name": "b", "endpoints": [{"name": "y", "calls": [{"service": "a", "endpoint": "z"}]}]},
    ]}  # fmt: skip
    assert load_topology(doc).service_names() == ["a", "b"]


def test_unknown_name_and_bad_random():
    """Unknown topology names and bad random:N are SpecErrors on field 'topology'."""
    for bad in ("no-such-system", "random:x", "random:1", "random:999999"):
        with pytest.raises(SpecError) as err:
            load_topology(bad)
        assert err.value.field == "topology"


def test_no_entry_traffic_is_rejected():
    """A topology where no endpoint takes traffic is rejected."""
    doc = chain()
    doc["services"][0]["endpoints"][0]["weight"] = 0
    with pytest.raises(SpecError, match="weight"):
        load_topology(doc)
