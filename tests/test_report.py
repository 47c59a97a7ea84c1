"""Postmortems: every section is there, the HTML embeds its figures and renders offline."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from aisre.report import POSTMORTEM_SECTIONS, postmortem_facts, write_postmortem

from conftest import build_toy_case

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_facts_name_the_known_root_cause(toy_case):
    """On the toy case the summary names cart, and the truth line says the first hypothesis matches."""
    pm = postmortem_facts(toy_case)
    assert all(pm.sections.get(name) for name in POSTMORTEM_SECTIONS)
    assert "**cart**" in pm.sections["Summary"]
    assert "the first hypothesis matches it" in pm.sections["Root cause and trigger"]
    assert "cart-team" in pm.sections["Action items"]
    assert "Time to detect: 20 s" in pm.sections["Detection"]
    assert len(pm.figures["signals"].data) >= 2


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_postmortem(build_toy_case(), out=out)


def test_postmortem_files_have_every_section(written):
    """The .ipynb, .html and .md exist; the HTML and Markdown carry every section heading."""
    html = written.html.read_text()
    md = written.md.read_text()
    assert written.ipynb.is_file()
    for name in POSTMORTEM_SECTIONS:
        assert f"{name}</h2>" in html or f">{name}<" in html, name
        assert f"## {name}" in md, name


def test_html_embeds_plotly_and_needs_no_network(written):
    """plotly.js is inline (no script loaded from a URL), and the Markdown stays small."""
    html = written.html.read_text()
    assert "Plotly.newPlot" in html
    assert not re.search(r"<script[^>]+src=[\"']https?://[^\"']*plotly", html)
    assert written.md.stat().st_size < 200_000


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_figures_draw_in_headless_chromium_offline(written, tmp_path):
    """In headless Chromium with every network request refused, the plot draws its lines."""
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def refuse(route):
            if not route.request.url.startswith("file:"):
                requested.append(route.request.url)
                return route.abort()
            return route.continue_()

        page.route("**/*", refuse)
        page.goto(written.html.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        lines = page.eval_on_selector_all(".js-plotly-plot .scatterlayer path.js-line", "els => els.length")
        shot = page.locator(".js-plotly-plot").first.screenshot(path=str(tmp_path / "plot.png"))
        browser.close()
    assert lines >= 2
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(shot)).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100, "the plot region is blank"
    assert not [u for u in requested if "plotly" in u], requested
