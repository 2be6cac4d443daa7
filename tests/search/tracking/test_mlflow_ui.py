"""The MLflow UI, checked in a real browser: Debian's headless Chromium, driven
by Playwright, opens the session's `mlflow server` (127.0.0.1) holding the
finished sweep where a user starts, on the experiment list, and clicks through
to the parent run and its child runs, the children grouped under the parent;
the dashboard URL a sweep prints opens on its runs. Screenshots are kept in
tests/artifacts/."""

import os
import shutil
from pathlib import Path

import pytest
from search_testing import REPO
from sweep_fixtures import TAGGER_DIMENSIONS

from search.sweep.next_steps import runs_url

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
# A headless browser that talks to nothing but the local server.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 60_000
HINT_WAIT_MS = 10_000  # MLflow's one-time hints (a popover over the GenAI overview) show up within this
WIDTH = "components.tagger.model.tok2vec.width"
SHOWN_COLUMNS = ("best_score", "archsweep.status", WIDTH, "training.optimizer.learn_rate")

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (make test installs it; CI never skips)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_sweep_is_a_parent_run_with_its_children(finished_sweep, browser):
    client = finished_sweep.server.client()
    parent = client.get_run(finished_sweep.result.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    child_names = sorted(c.info.run_name for c in children)
    assert len(child_names) == len(finished_sweep.result.trials)

    page = browser.new_page(viewport={"width": 1800, "height": 900})
    try:
        page.set_default_timeout(WAIT_MS)
        # Where a user starts: the experiment list; the sweep's experiment is one click away.
        page.goto(f"{finished_sweep.server.uri}/#/experiments")
        page.get_by_text(finished_sweep.settings.experiment, exact=True).first.click()
        # MLflow 3 opens every experiment on its GenAI overview (traces; no runs there):
        # the sidebar's "Model training" switch shows the runs.
        page.get_by_text("Traces", exact=True).first.wait_for()
        assert not page.get_by_text(parent.info.run_name, exact=True).count()
        _dismiss_hint(page)
        page.get_by_text("Model training", exact=True).click()
        page.get_by_text(parent.info.run_name, exact=True).wait_for()
        assert f"#/experiments/{parent.info.experiment_id}" in page.url
        # Before expanding, the children are grouped away under their parent.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "mlflow_ui_collapsed.png"))
        assert not [name for name in child_names if page.get_by_text(name, exact=True).count()]
        close_assistant = page.locator('button[data-component-id="mlflow.assistant.chat_panel.close"]')
        if close_assistant.count():
            close_assistant.click()

        # The column chooser offers the metrics under their own names and every searched param.
        page.locator("[data-testid=column-selection-dropdown]").first.click()
        page.get_by_text("best_score", exact=True).last.wait_for()
        for name in ("best_score", "score", "words_per_second", "model_params", *TAGGER_DIMENSIONS, "archsweep.status"):
            assert page.get_by_text(name, exact=True).count(), f"{name} is not offered as a column"
        for name in SHOWN_COLUMNS:
            page.get_by_text(name, exact=True).last.click()
        page.keyboard.press("Escape")

        # The expander in the parent's run-name cell (MLflow 3.17's run-name cell renderer).
        page.locator('button[data-component-id$="runnamecellrenderer.tsx_46"]').first.click()
        for name in child_names:
            page.get_by_text(name, exact=True).wait_for()
        page.screenshot(path=str(ARTIFACTS / "mlflow_ui_sweep.png"))

        def row_text(run_id: str) -> str:  # a row is split over the grid's pinned and scrolled parts
            return "\n".join(page.locator(f'div[role="row"][row-id="{run_id}"]').all_inner_texts())

        def row_top(run_id: str) -> float:
            return page.locator(f'div[role="row"][row-id="{run_id}"]').first.bounding_box()["y"]

        # The parent first, its children right below it, each with its own values in the chosen columns.
        assert row_top(parent.info.run_id) < min(row_top(c.info.run_id) for c in children)
        for child in children:
            cells = row_text(child.info.run_id).split("\n")
            assert child.info.run_name in cells
            assert child.data.tags["archsweep.status"] in cells
            assert child.data.params[WIDTH] in cells
        assert f"{1 + len(child_names)} matching runs" in page.inner_text("body")
    finally:
        page.close()


def _dismiss_hint(page) -> None:
    """MLflow's first-visit popover over the GenAI overview ("Detect Issues in
    Your Traces") catches every click until its "Got it" is clicked."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    got_it = page.get_by_role("button", name="Got it")
    try:
        got_it.wait_for(timeout=HINT_WAIT_MS)
    except PlaywrightTimeout:
        return
    got_it.click()


def test_the_printed_dashboard_url_opens_on_the_runs(finished_sweep, browser):
    """A fresh browser (the UI's switch at its GenAI default) opens the URL a sweep
    prints on the sweep's runs, with the switch on "Model training"."""
    parent = finished_sweep.server.client().get_run(finished_sweep.result.parent_run_id)
    assert finished_sweep.result.experiment_id == parent.info.experiment_id  # the id the sweep prints
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.set_default_timeout(WAIT_MS)
        page.goto(runs_url(finished_sweep.server.uri, finished_sweep.result.experiment_id))
        page.get_by_text(parent.info.run_name, exact=True).wait_for()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "mlflow_ui_printed_url.png"))
    finally:
        page.close()


def test_the_report_page_draws_its_plots_offline(finished_sweep, browser):
    """report.html (logged to the parent run) opened from disk, with every
    request other than the file itself refused: plotly.js is inlined, so all
    interactive plots draw."""
    from search.report.build import PLOTS

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    refused = []
    try:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                   else (refused.append(route.request.url), route.abort()))
        page.set_default_timeout(WAIT_MS)
        page.goto(finished_sweep.result.report_path.as_uri())
        for name in PLOTS:
            page.locator(f"#plot-{name} .main-svg").first.wait_for()
        page.screenshot(path=str(ARTIFACTS / "report_html.png"), full_page=True)
        assert not refused
    finally:
        page.close()
