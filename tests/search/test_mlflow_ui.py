"""The MLflow UI, checked in a real browser: Debian's headless Chromium, driven
by Playwright, opens the session's `mlflow server` (127.0.0.1) holding the
finished sweep, and the parent run and its child runs must be listed, the
children grouped under the parent. Screenshots are kept in tests/artifacts/."""

import os
import shutil
from pathlib import Path

import pytest

from search_testing import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
# A headless browser that talks to nothing but the local server.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 60_000

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

    page = browser.new_page(viewport={"width": 1600, "height": 900})
    try:
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{finished_sweep.server.uri}/#/experiments/{parent.info.experiment_id}/runs")
        page.get_by_text(parent.info.run_name, exact=True).wait_for()
        # Before expanding, the children are grouped away under their parent.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "mlflow_ui_collapsed.png"))
        assert not [name for name in child_names if page.get_by_text(name, exact=True).count()]
        close_assistant = page.locator('button[data-component-id="mlflow.assistant.chat_panel.close"]')
        if close_assistant.count():
            close_assistant.click()
        # The expander in the parent's run-name cell (MLflow 3.17's run-name cell renderer).
        page.locator('button[data-component-id$="runnamecellrenderer.tsx_46"]').first.click()
        for name in child_names:
            page.get_by_text(name, exact=True).wait_for()
        page.screenshot(path=str(ARTIFACTS / "mlflow_ui_sweep.png"))
        # Listed in order: the parent, then its children right below it.
        names = [page.locator(f'div[role="row"][row-id="{run_id}"]').first.bounding_box()["y"]
                 for run_id in [parent.info.run_id, *(c.info.run_id for c in children)]]
        assert names[0] < min(names[1:])
        text = page.inner_text("body")
        assert f"{1 + len(child_names)} matching runs" in text
    finally:
        page.close()
