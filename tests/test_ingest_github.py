"""GitHub deployment webhooks become deploy events and Changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aisre.datasets.ingest import parse_github
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLES = SHARED / "formats" / "github_webhooks"


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"shared format sample {path} is absent (set AISRE_SHARED)")
    return path


def test_deployment():
    events, changes = parse_github(sample("deployment.payload.json"))
    assert len(changes) == 1
    ch = changes[0]
    assert (ch.id, ch.service, ch.author) == ("github-deployment-145988746", "Hello-World", "Codertocat")
    assert ch.revision == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert ch.time == 1557933653.0  # 2019-05-15T15:20:53Z
    assert ch.description == "deploy master@f95f852 to production"
    assert events[["entity", "kind", "reason"]].values.tolist() == [["Hello-World", "deploy", "created"]]
    assert json.loads(events["attributes"].iloc[0])["environment"] == "production"


def test_deployment_status_time_and_state():
    """A status row takes the status's time and state; its Change is the deployment's."""
    events, changes = parse_github(sample("deployment_status.payload.json"))
    assert events["reason"].tolist() == ["success"]
    assert events["time"].tolist() == [1557933655.0]  # deployment_status.created_at, 2 s after the deployment
    assert changes[0].time == 1557933653.0


def test_pages_variants():
    events, changes = parse_github(sample("deployment_status.gh-pages.payload.json"))
    assert events["reason"].tolist() == ["in_progress"]
    attrs = json.loads(events["attributes"].iloc[0])
    assert attrs["log_url"].startswith("https://github.com/CorsixTH/")
    assert "environment_url" not in attrs  # "" is no URL
    assert changes[0].author == "github-pages[bot]"
    d_events, _ = parse_github(sample("deployment.gh-pages.payload.json"))
    assert d_events["time"].tolist() == [1641173310.0]  # 2022-01-03T01:28:30Z


def test_list_of_deliveries_header_and_payload_service():
    """Several deliveries: one Change per deployment id; payload.service (even as a JSON string) names the service."""
    dep = {"deployment": {"id": 7, "sha": "abc1234def", "ref": "main", "environment": "prod", "created_at": "2024-01-01T00:00:00Z", "payload": '{"service": "cart"}'}, "repository": {"name": "monorepo"}, "sender": {"login": "ann"}}
    status = {**dep, "deployment_status": {"state": "failure", "created_at": "2024-01-01T00:03:00Z", "description": "health check"}}
    events, changes = parse_github([status, dep])
    assert [c.id for c in changes] == ["github-deployment-7"]
    assert changes[0].service == "cart"
    assert events["reason"].tolist() == ["created", "failure"]
    assert events["message"].iloc[1] == "deploy main@abc1234 to prod: failure (health check)"
    forced, _ = parse_github(status, event="deployment")
    assert forced["reason"].tolist() == ["created"]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"action": "created"}, "deployment"),
        ({"deployment": {"created_at": "2024-01-01T00:00:00Z"}}, "deployment.id"),
        ({"deployment": {"id": 1}}, "deployment.created_at"),
        ({"deployment": {"id": 1, "created_at": "2024-01-01T00:00:00Z"}, "deployment_status": {"state": "success"}}, "deployment_status.created_at"),
        ({"deployment": {"id": 1, "created_at": "2024-01-01T00:00:00Z"}, "deployment_status": []}, "deployment_status"),
    ],
)
def test_malformed_payloads_name_the_field(doc, field):
    with pytest.raises(DataError) as err:
        parse_github(doc)
    assert err.value.field == field


def test_unknown_event_header():
    with pytest.raises(DataError, match="event must be one of"):
        parse_github({"deployment": {}}, event="push")
