"""The Dagster UI of a temporary instance, driven in headless Chromium (Debian's package) by Playwright.

A real `dagster dev` (webserver, daemon, code server) serves a state in which one demo paper was
ingested and generated with an extractive model; the tests look at the asset graph, the
Automation page and the leaderboard's asset page as a user would. Screenshots are written to
``.ui-screenshots/`` at the repository root (or ``$RAG_PIPELINE_SCREENSHOTS``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from rag_pipeline.settings import REPO_ROOT
from rag_pipeline_tests.dagster_web import DagsterWeb

SCREENSHOTS = Path(os.environ.get("RAG_PIPELINE_SCREENSHOTS", REPO_ROOT / ".ui-screenshots"))
# Chromium's background services reach for the network, which this machine does not have.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAPER, MODEL = "demo-rerank-study", "lead-3"


def _install_chromium() -> str | None:
    """Debian's chromium, installed when missing and we may (root with apt-get)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(command, check=False, capture_output=True, timeout=900).returncode != 0:
            return None
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or _install_chromium()
    if path is None:
        message = "Debian's chromium is not installed and could not be installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def ui(tmp_path_factory, chromium):
    state = tmp_path_factory.mktemp("ui") / "state"
    env = {**os.environ, "RAG_PIPELINE_HOME": str(state), "DAGSTER_HOME": str(state / "dagster"),
           "DAGSTER_DISABLE_TELEMETRY": "1"}
    # Something worth looking at: one paper ingested, generated and scored, a leaderboard built.
    subprocess.run([sys.executable, "-m", "rag_pipeline.cli", "run", "--papers", PAPER, "--models", MODEL, "--no-judge"],
                   env=env, cwd=REPO_ROOT, check=True, capture_output=True, timeout=900)
    web = DagsterWeb(["dagster", "dev", "-w", "workspace.yaml"], env, state / "dagster-dev.log")
    try:
        web.wait_serving()
        yield web.url
    finally:
        web.stop()  # dagster dev runs the daemon and code server as children


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.dialog_dismissed = False
    yield page
    context.close()


def open_page(page, url: str, wait_for_text: str):
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text(wait_for_text, exact=True).first.wait_for()
    if not page.dialog_dismissed:
        # The webserver's one-off community dialog opens a moment after the first page; it covers the page.
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            page.get_by_role("button", name="Skip").click(timeout=15_000)
        except PlaywrightTimeout:
            pass
        page.dialog_dismissed = True
    page.wait_for_timeout(1000)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_asset_graph_shows_the_three_groups(ui, page):
    open_page(page, f"{ui}/asset-groups", "Global asset lineage")
    for group in ("ingest", "generation", "evaluation"):
        page.get_by_text(group, exact=True).first.wait_for()
    assert screenshot(page, "asset-graph").stat().st_size > 0


def _sensor_switch(page, name: str):
    """The on/off switch of one sensor's row on the Automation page (the row's last checkbox)."""
    row = page.locator("div[data-index]", has=page.locator(f"a[href$='/sensors/{name}']"))
    return row.locator("input[type=checkbox]").last


def test_the_automation_page_shows_the_automation_sensor_on(ui, page):
    from rag_pipeline.definitions import defs

    automation = [s.name for s in defs.sensors if isinstance(s, dg.AutomationConditionSensorDefinition)]
    assert automation, "the Definitions declare no automation condition sensor"
    open_page(page, f"{ui}/automation", "registry_sensor")
    screenshot(page, "automation")
    for name in [*automation, "registry_sensor"]:
        assert _sensor_switch(page, name).is_checked(), f"{name} is off in the UI"


def test_the_leaderboard_asset_page_shows_its_metadata(ui, page):
    open_page(page, f"{ui}/assets/leaderboard", "leaderboard")
    page.get_by_text("Metadata", exact=True).first.wait_for()
    body = page.inner_text("body")
    screenshot(page, "leaderboard")
    for key in ("report", "tables", "models", "input_event_ids"):
        assert key in body, key
    assert MODEL in body  # the headline table names the model that was scored
