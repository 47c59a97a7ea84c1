"""Ownership: path globs and CODEOWNERS (last matching pattern wins), and the blast radius."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aisre.case import Topology
from aisre.errors import SpecError
from aisre.gate import blast_radius, load_ownership
from aisre.gate.owners import Ownership, pattern_regex, services_by_path

CODEOWNERS = """\
# comment
*                 @org/platform
*.go              @org/go-team
/src/cart/        @org/cart-team   # trailing comment
docs/*            @org/docs
src/cart/vendor/                 
**/migrations     @org/dba
"""


def _owners(text: str, paths: list[str]) -> dict[str, tuple[str, ...]]:
    per = Ownership.from_codeowners(text).owners(paths)
    return dict(zip(paths, per.tolist(), strict=True))


def test_codeowners_last_match_wins() -> None:
    got = _owners(CODEOWNERS, [
        "README.md", "main.go", "src/cart/handler.go", "src/cart/vendor/lib.go",
        "docs/a.md", "docs/x/b.md", "db/migrations/001.sql", "lib/src/cart/x.py",
    ])  # fmt: skip
    assert got == {
        "README.md": ("@org/platform",),
        "main.go": ("@org/go-team",),
        "src/cart/handler.go": ("@org/cart-team",),  # the later /src/cart/ beats *.go
        "src/cart/vendor/lib.go": (),  # a later pattern without owners leaves it unowned
        "docs/a.md": ("@org/docs",),
        "docs/x/b.md": ("@org/platform",),  # docs/* covers direct children only (GitHub)
        "db/migrations/001.sql": ("@org/dba",),
        "lib/src/cart/x.py": ("@org/platform",),  # /src/cart/ is anchored at the root
    }


def test_codeowners_real_sample(shared: Path) -> None:
    """The OpenTelemetry proto CODEOWNERS: '*' for everything, profiles paths to the profiling team."""
    own = load_ownership(shared / "formats" / "codeowners" / "opentelemetry-proto-CODEOWNERS")
    assert own.kind == "codeowners" and len(own.rules) == 3
    per = own.owners(["opentelemetry/proto/profiles/v1development/profiles.proto",
                      "opentelemetry/proto/collector/profiles/v1development/service.proto",
                      "opentelemetry/proto/trace/v1/trace.proto"]).tolist()  # fmt: skip
    assert per[0] == per[1] == ("@open-telemetry/spec-sponsors", "@open-telemetry/profiling-approvers")
    assert per[2] == ("@open-telemetry/proto-maintainers", "@open-telemetry/proto-approvers")


def test_codeowners_teams_become_services_through_the_topology() -> None:
    topo = Topology()
    topo.add_node("cartservice", tier="critical", owner="cart-team")
    topo.add_node("frontend", owner="org/web")
    own = Ownership.from_codeowners("* @org/web\n/src/cart/ @org/cart-team\n/tools/ @someone\n")
    got = own.services(["src/cart/a.go", "web/index.html", "tools/x.sh"], topo)
    assert got == {"@someone": ["tools/x.sh"], "cartservice": ["src/cart/a.go"], "frontend": ["web/index.html"]}


def test_glob_file_maps_to_every_matching_service(tmp_path: Path) -> None:
    p = tmp_path / "owners.yaml"
    p.write_text("cart: ['src/cart/**', 'proto/cart.proto']\nfrontend: [src/web/]\nshared: ['**/*.proto']\n")
    own = load_ownership(p)
    assert own.kind == "globs"
    got = own.services(["src/cart/a.go", "proto/cart.proto", "src/web/x/y.ts", "README.md"])
    assert got == {"cart": ["src/cart/a.go", "proto/cart.proto"], "frontend": ["src/web/x/y.ts"],
                   "shared": ["proto/cart.proto"]}  # fmt: skip


def test_bad_glob_file(tmp_path: Path) -> None:
    p = tmp_path / "owners.yaml"
    p.write_text("cart: 3\n")
    with pytest.raises(SpecError, match="cart"):
        load_ownership(p)
    p.write_text("- just\n- a list\n")
    with pytest.raises(SpecError):
        load_ownership(p)


def test_paths_named_after_services_without_an_ownership_file() -> None:
    topo = Topology()
    for s in ("cartservice", "frontend"):
        topo.add_node(s)
    assert services_by_path(["src/cartservice/main.go", "cartservice", "docs/x.md"], topo) == {
        "cartservice": ["src/cartservice/main.go"]}


@given(st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=4),
       st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=0, max_size=3))  # fmt: skip
def test_directory_pattern_covers_everything_below(dirs: list[str], rest: list[str]) -> None:
    """An anchored directory pattern matches exactly the paths below it (a property over paths)."""
    rx = re.compile(pattern_regex("/" + "/".join(dirs) + "/"))
    below = "/".join([*dirs, *rest, "file.txt"])
    assert rx.match(below)
    assert not rx.match("/".join(["zz", *dirs, "file.txt"]))


@given(st.text(alphabet="ab/.", min_size=1, max_size=12))
def test_star_does_not_cross_directories(path: str) -> None:
    rx = re.compile(pattern_regex("/x/*"))
    assert bool(rx.match("x/" + path)) == ("/" not in path and path != "")


def test_negation_is_not_supported() -> None:
    with pytest.raises(SpecError, match="negated"):
        pattern_regex("!keep.txt")


def _hand_topology() -> Topology:
    """frontend(critical) -> checkout(critical) -> payment(standard) -> db(database, standard);
    frontend -> ads(best-effort); batch(best-effort) -> payment."""
    t = Topology()
    t.add_node("frontend", tier="critical")
    t.add_node("checkout", tier="critical")
    t.add_node("payment")
    t.add_node("db", "database")
    t.add_node("ads", tier="best-effort")
    t.add_node("batch", tier="best-effort")
    t.add_node("node-1", "host")
    t.add_edge("frontend", "checkout")
    t.add_edge("checkout", "payment")
    t.add_edge("payment", "db", "reads")
    t.add_edge("frontend", "ads")
    t.add_edge("batch", "payment")
    t.add_edge("payment", "node-1", "runs_on")
    return t


def test_blast_radius_on_a_hand_built_topology() -> None:
    t = _hand_topology()
    b = blast_radius(t, ["db"])
    assert b.dependents == ["batch", "checkout", "frontend", "payment"]
    assert b.weighted == pytest.approx(1 + 1 + 3 + 3 + 0.3)  # db, payment, checkout, frontend, batch
    assert b.critical == ["checkout", "frontend"]
    leaf = blast_radius(t, ["ads"])
    assert leaf.dependents == ["frontend"] and leaf.weighted == pytest.approx(0.3 + 3)
    top = blast_radius(t, ["frontend"])
    assert top.dependents == [] and top.weighted == 3
    both = blast_radius(t, ["payment", "checkout"])
    assert both.dependents == ["batch", "frontend"] and both.weighted == pytest.approx(1 + 3 + 3 + 0.3)


def test_blast_radius_without_topology_or_with_unknown_service() -> None:
    assert blast_radius(None, ["a", "b"]).weighted == 2
    assert blast_radius(_hand_topology(), ["nowhere"]).weighted == 1
