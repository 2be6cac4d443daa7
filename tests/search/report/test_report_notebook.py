"""notebooks/review_sweep.ipynb executed top to bottom (nbclient, a real
IPython kernel) against the session's finished sweep on the MLflow server, so
the notebook cannot rot: any error in a cell fails the test. The kernel gets no
MLflow progress-bar setting: the notebook's own keeps its outputs clean."""

import os
import re

import nbformat
import pytest
from confection import Config
from nbclient import NotebookClient
from search_testing import REPO

from search.report.build import PLOTS, score_label

NOTEBOOK = REPO / "notebooks" / "review_sweep.ipynb"


@pytest.fixture(scope="module")
def executed(finished_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("notebook")
    env = {
        "ARCHSWEEP_TRACKING_URI": finished_sweep.server.uri,
        "ARCHSWEEP_EXPERIMENT": finished_sweep.settings.experiment,
        "ARCHSWEEP_REVIEW_DIR": str(out / "review"),
    }
    saved = {k: os.environ.get(k) for k in [*env, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"]}
    os.environ.update(env)  # the kernel inherits this process's environment
    os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
    try:
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook, out / "review"


def _outputs(notebook):
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def test_the_notebook_runs_top_to_bottom(executed):
    notebook, _ = executed
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in cells)
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]
    # Every code cell is explained by the markdown before it.
    kinds = [c.cell_type for c in notebook.cells]
    assert kinds[0] == "markdown" and all(kinds[i - 1] == "markdown" or kinds[i - 2] == "markdown" for i, k in enumerate(kinds) if k == "code")


def _text(output) -> str:
    return output.get("text", "") + "".join(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))


def test_the_notebook_outputs_are_clean(finished_sweep, executed):
    """No MLflow download progress bars; counts as integers, scores in % under the metric's name."""
    notebook, _ = executed
    texts = [_text(o) for o in _outputs(notebook)]
    assert not [t for t in texts if "Downloading artifacts" in t or re.search(r"\d+%\|", t)]
    client = finished_sweep.server.client()
    best = max((t for t in finished_sweep.result.trials if t.status == "finished"), key=lambda t: t.best_score)
    size = int(client.get_run(best.run_id).data.metrics["model_params"])
    tables = [o.data["text/html"] for o in _outputs(notebook) if "text/html" in o.get("data", {})]
    trials_table = next(t for t in tables if best.trial_id in t and score_label("pos_acc", best=True) in t)
    assert f"<td>{size}</td>" in trials_table and f"{size}.0" not in trials_table
    shown = [float(n) for n in re.findall(r"<td>(-?\d+\.\d+)</td>", trials_table)]
    assert best.best_score * 100 == pytest.approx(max(shown), abs=0.006)  # in %, not a fraction
    finished = int(client.get_run(finished_sweep.result.parent_run_id).data.metrics["trials_finished"])
    assert any(f"<td>{finished}</td>" in t and "trials_finished" in t for t in tables)
    assert not [t for t in tables if re.search(r"<td>\d+\.0</td>", t) and "trials_finished" in t]
    assert any("score: pos_acc on the dev data" in t for t in texts)


def test_the_notebook_shows_the_best_trials_and_the_plots(finished_sweep, executed):
    notebook, review = executed
    best = max((t for t in finished_sweep.result.trials if t.status == "finished"), key=lambda t: t.best_score)
    tables = [o.data["text/html"] for o in _outputs(notebook) if "text/html" in o.get("data", {})]
    assert any(best.trial_id in table and "best pos_acc (%)" in table for table in tables)
    images = [o for o in _outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(images) == len(PLOTS)
    assert {f"{name}.png" for name in PLOTS} <= {p.name for p in (review / "report").iterdir()}


def test_the_notebook_exports_the_best_config(finished_sweep, executed):
    _, review = executed
    text = (review / "best.cfg").read_text()
    best = max((t for t in finished_sweep.result.trials if t.status == "finished"), key=lambda t: t.best_score)
    assert f"trial {best.trial_id} (run {best.run_id})" in text
    config = Config().from_str(text, interpolate=False)
    assert str(config["training"]["seed"]) == finished_sweep.server.client().get_run(best.run_id).data.params["training.seed"]
