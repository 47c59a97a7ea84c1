"""The served workbench in a real browser: voila serves notebooks/app.ipynb on loopback, Debian's
headless chromium (driven by Playwright, never a downloaded browser) opens it, the causal graph
and the timeline draw, and a click on a service updates the detail panel.

The case reaches the page through ``AISRE_APP_CASE`` (voila takes no papermill parameters).
Set ``AISRE_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aisre.case import save_case

from conftest import ROOT, build_toy_case

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
APP = ROOT / "notebooks" / "app.ipynb"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
RENDER_TIMEOUT_MS = 150_000  # a loaded 2-core machine: kernel start, the ranker, plotly.js


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _voila() -> Path | None:
    exe = Path(sys.executable).with_name("voila")
    return exe if exe.exists() else (Path(p) if (p := shutil.which("voila")) else None)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve app.ipynb with the toy case on a free loopback port; stop voila (and its kernels)
    at the end, always."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (.ci/run does)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    voila = _voila()
    if voila is None:
        pytest.skip("voila is not installed (the app extra)")
    tmp = tmp_path_factory.mktemp("app")
    case_dir = save_case(build_toy_case(), tmp / "case")
    port = _free_port()
    env = {**os.environ, "AISRE_APP_CASE": str(case_dir), "AISRE_HOME": str(tmp / "home"), "AISRE_ACTOR": "browser-test"}
    env.pop("AISRE_DB", None)
    log = (tmp / "voila.log").open("w")
    proc = subprocess.Popen(
        [str(voila), "--Voila.ip=127.0.0.1", "--no-browser", f"--port={port}", "--show_tracebacks=True", str(APP)],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"voila exited with {proc.returncode}: {(tmp / 'voila.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("voila did not listen within 60 s")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        try:  # the kernels voila started share its session; none may outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


def _region_stats(shot: Path, box: dict[str, float]) -> tuple[float, int]:
    """Return (pixel variance, number of distinct grey levels) of *box* in the screenshot."""
    from PIL import Image, ImageStat

    with Image.open(shot) as img:
        region = img.convert("L").crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]),
                                        int(box["y"] + box["height"])))
        return float(ImageStat.Stat(region).var[0]), len(region.getcolors(256) or [])


def test_served_workbench_draws_and_a_node_click_updates_the_detail_panel(app_url: str, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    graph = ".aisre-graph .js-plotly-plot"
    timeline = ".aisre-timeline .js-plotly-plot"
    title = ".aisre-detail .aisre-detail-title"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            # Offline and fast: anything not served by this voila (web fonts on a CDN) is refused.
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(app_url) else route.abort())
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(app_url, timeout=RENDER_TIMEOUT_MS)
            page.wait_for_selector(f"{graph} .scatterlayer .point", timeout=RENDER_TIMEOUT_MS)
            page.wait_for_selector(f"{timeline} .scatterlayer .point", timeout=RENDER_TIMEOUT_MS)
            page.wait_for_selector(title, timeout=RENDER_TIMEOUT_MS)
            page.wait_for_timeout(500)  # let plotly finish its transitions before the picture

            shot = tmp_path / "app.png"
            page.screenshot(path=str(shot), full_page=True)
            for sel in (graph, timeline):
                box = page.locator(sel).first.bounding_box()
                assert box and box["width"] > 200 and box["height"] > 150, f"{sel} has no size: {box}"
                var, levels = _region_stats(shot, {**box, "y": box["y"] + page.evaluate("window.scrollY")})
                assert var > 50 and levels > 8, f"{sel} looks blank: variance {var:.1f}, {levels} grey levels"

            before = page.locator(title).inner_text()
            assert "signals of cart" in before  # the top suspect is shown first
            nodes = page.locator(f"{graph} .scatterlayer .trace").nth(2).locator(".point")
            assert nodes.count() == 3  # cart, fe, redis (sorted)
            nodes.nth(1).click(force=True)  # fe
            page.wait_for_function(
                "s => (document.querySelector(s) || {}).textContent?.includes('signals of fe')", arg=title,
                timeout=30_000,
            )
            assert page.locator(title).get_attribute("data-entity") == "fe"
            page.screenshot(path=str(tmp_path / "app-clicked.png"), full_page=True)
            keep = os.environ.get("AISRE_SCREENSHOT_DIR")
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                for name in ("app.png", "app-clicked.png"):
                    shutil.copy(tmp_path / name, Path(keep) / name)
            assert errors == []
        finally:
            browser.close()
