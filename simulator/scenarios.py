"""Named, ready-to-run fault-injection scenarios (``aisre demo --scenario NAME``)."""

from __future__ import annotations

from typing import Any

from aisre.case import Case
from aisre.errors import SpecError

__all__ = ["DEFAULT_SCENARIO", "SCENARIOS", "run_scenario"]

SCENARIOS: dict[str, dict[str, Any]] = {
    "cart-cpu": {
        "description": "CPU hog on Online Boutique's cartservice: the cart's CPU saturates, then the frontend's latency and SLO burn follow",
        "topology": "online-boutique", "faults": ["cpu:cartservice@300+300*0.9"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "checkout-cpu": {
        "description": "CPU hog on checkoutservice (as RCAEval RE2-OB checkoutservice_cpu): checkout latency and order failures",
        "topology": "online-boutique", "faults": ["cpu:checkoutservice@300+300*0.95"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "cart-crash": {
        "description": "cartservice crash-loops: connection refused upstream, BackOff and restart events, frontend errors",
        "topology": "online-boutique", "faults": ["crash:cartservice@300+120"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "bad-deploy": {
        "description": "a bad productcatalogservice release: its deploy event, then slower and failing catalogue calls",
        "topology": "online-boutique", "faults": ["deploy:productcatalogservice@300+240*0.6"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "payment-error": {
        "description": "code-level exception in paymentservice/Charge: checkouts fail with the exception in its logs",
        "topology": "online-boutique", "faults": ["error:paymentservice/Charge@300+300*0.6"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "ad-memleak": {
        "description": "memory leak in adservice: memory climbs to the limit, OOMKilled, restart, again",
        "topology": "online-boutique", "faults": ["mem:adservice@240+360*0.8"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "catalogue-delay": {
        "description": "network delay on Sock Shop's catalogue: catalogue and front-end latency rise",
        "topology": "sock-shop", "faults": ["delay:catalogue@300+300*0.3"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "orders-db-pool": {
        "description": "Sock Shop orders-db connection pool saturated: orders wait for connections and time out",
        "topology": "sock-shop", "faults": ["pool:orders-db@300+300*0.9"], "duration": 600.0, "rate": 30.0, "seed": 1,
    },
    "noisy-neighbour": {
        "description": "a batch job lands on node-1 next to frontend, cartservice, redis-cart and adservice",
        "topology": "online-boutique", "faults": ["neighbour:node-1@300+300*0.8"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
    "travel-config": {
        "description": "Train Ticket: a config push shrinks ts-travel-service's worker pool; searches queue and fail",
        "topology": "train-ticket", "faults": ["config:ts-travel-service@300+300*0.9"], "duration": 600.0, "rate": 20.0, "seed": 1,
    },
}  # fmt: skip
"""Built-in scenarios: keyword arguments of :func:`aisre.simulator.simulate` plus a description."""

DEFAULT_SCENARIO = "cart-cpu"
"""The scenario ``aisre demo`` runs when none is named."""


def run_scenario(name: str = DEFAULT_SCENARIO, **overrides: Any) -> Case:
    """Run scenario *name* (``overrides`` replace its settings, e.g. ``seed=2``) and return the Case.

    Raises:
        SpecError: for an unknown scenario name (field ``scenario``) or a bad override.
    """
    from .runner import simulate

    if name not in SCENARIOS:
        raise SpecError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}", field="scenario")
    spec = {k: v for k, v in SCENARIOS[name].items() if k != "description"}
    spec.update(overrides)
    topology = spec.pop("topology")
    faults = spec.pop("faults", ())
    return simulate(topology, faults, **spec)
