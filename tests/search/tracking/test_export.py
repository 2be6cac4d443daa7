"""Exporting a sweep's best trial (search/tracking/export.py, `archsweep export`) from the
session's finished sweep on the real MLflow server, and training the export
again: CPU training is deterministic (one BLAS thread), so the exported config
reproduces the trial's scores exactly."""

import re
from pathlib import Path

import pytest
from confection import Config
from search_testing import run_cli

from search.space import DIST_KEY
from search.tracking.export import export_best
from search.tracking.mlflow import SweepTracking
from search.training.config import load_config
from search.training.loop import train

CANDIDATE_METRICS = ["loss_tagger", "train_seconds", "words_per_second", "peak_memory_mb"]


@pytest.fixture(scope="module")
def sweep_runs(finished_sweep):
    client = finished_sweep.server.client()
    parent = client.get_run(finished_sweep.result.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    finished = [c for c in children if c.data.tags["archsweep.status"] == "finished"]
    assert finished, "the session's sweep has no finished trial"
    best = max(finished, key=lambda c: c.data.metrics["best_score"])
    return client, parent, finished, best


@pytest.fixture(scope="module")
def exported(finished_sweep, sweep_runs, tmp_path_factory) -> Path:
    return export_best(
        finished_sweep.server.uri, parent_run_id=finished_sweep.result.parent_run_id,
        output=tmp_path_factory.mktemp("export") / "sub" / "best.cfg",
    )


def _header(path: Path):
    return [line for line in path.read_text().splitlines() if line.startswith("#")]


def test_export_writes_the_best_trials_plain_config(finished_sweep, sweep_runs, exported):
    client, parent, finished, best = sweep_runs
    assert exported.is_file()
    header = _header(exported)
    assert header == [
        f"# Exported by archsweep from sweep {parent.info.run_name} (MLflow run {parent.info.run_id}),",
        f"# trial {best.data.tags['archsweep.trial_id']} (run {best.info.run_id}): "
        f"best_score = {best.data.metrics['best_score']:.6f}.",
        f"# Tracking URI: {finished_sweep.server.uri}",
    ]
    text = exported.read_text()
    assert DIST_KEY not in text
    config = Config().from_str(text, interpolate=False)
    assert config["training"]["seed"] == int(best.data.params["training.seed"])
    # It is the trial's own config (as the trial logged it), filled and checked.
    logged = Path(client.download_artifacts(best.info.run_id, "config.cfg", str(exported.parent))).read_text()
    assert config == Config().from_str(logged, interpolate=False)
    assert load_config(exported)["training"]["seed"] == config["training"]["seed"]
    # The sweep's own best.cfg is the same export.
    assert finished_sweep.result.best_config_path.read_text().splitlines()[1] == header[1]


def test_the_export_reproduces_the_trial_exactly(sweep_runs, exported):
    client, _, _, best = sweep_runs
    result = train(exported)
    assert result.best_score == best.data.metrics["best_score"]
    logged = {m.step: m.value for m in client.get_metric_history(best.info.run_id, "score")}
    assert {row.step: row.score for row in result.history} == logged


def test_cli_export_and_train(finished_sweep, sweep_runs, exported, tmp_path):
    client, _, _, best = sweep_runs
    out = tmp_path / "best.cfg"
    proc = run_cli(
        "export", "--parent-run", finished_sweep.result.parent_run_id, "--tracking-uri", finished_sweep.server.uri,
        "-o", str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out}"
    assert out.read_text() == exported.read_text()
    # --experiment: the experiment's latest sweep (the session made one of this name).
    by_name = tmp_path / "by-name.cfg"
    proc = run_cli("export", "--experiment", "e2e-tagger", "--tracking-uri", finished_sweep.server.uri, "-o", str(by_name))
    assert proc.returncode == 0, proc.stderr
    assert by_name.read_text() == exported.read_text()
    # `archsweep train` on the export prints the trial's best score.
    proc = run_cli("train", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    history = client.get_metric_history(best.info.run_id, "score")
    top = max(history, key=lambda m: (m.value, -m.step))
    expected = f"best score {best.data.metrics['best_score'] * 100:.2f} at step {top.step}"
    assert re.search(rf"^stopped: .*; {re.escape(expected)}$", proc.stdout, re.M), proc.stdout[-2000:]


def test_metric_picks_by_another_metric(finished_sweep, sweep_runs, tmp_path):
    _, _, finished, best = sweep_runs
    usable = [m for m in CANDIDATE_METRICS if len({c.data.metrics[m] for c in finished}) == len(finished)]
    assert usable, "no metric tells the finished trials apart"
    # Prefer a metric whose best trial is not the best by score, so that choosing it shows.
    metric = next((m for m in usable if max(finished, key=lambda c: c.data.metrics[m]) is not best), usable[0])
    chosen = max(finished, key=lambda c: c.data.metrics[metric])
    out = tmp_path / "by-metric.cfg"
    proc = run_cli(
        "export", "--parent-run", finished_sweep.result.parent_run_id, "--tracking-uri", finished_sweep.server.uri,
        "--metric", metric, "-o", str(out),
    )
    assert proc.returncode == 0, proc.stderr
    header = _header(out)
    assert header[1] == (
        f"# trial {chosen.data.tags['archsweep.trial_id']} (run {chosen.info.run_id}): "
        f"{metric} = {chosen.data.metrics[metric]:.6f}."
    )
    config = Config().from_disk(out, interpolate=False)
    assert config["training"]["seed"] == int(chosen.data.params["training.seed"])


# ---------------------------------------------------------------- errors


def test_export_errors(finished_sweep, mlflow_server, tmp_path):
    uri = mlflow_server.uri
    with pytest.raises(ValueError, match=f"no MLflow experiment named 'no-such-sweep' at {re.escape(uri)}"):
        export_best(uri, experiment="no-such-sweep", output=tmp_path / "a.cfg")
    with pytest.raises(ValueError, match=f"sweep {finished_sweep.result.parent_run_id} has no finished trial with metric 'bogus'"):
        export_best(uri, parent_run_id=finished_sweep.result.parent_run_id, metric="bogus", output=tmp_path / "a.cfg")
    # An experiment without a sweep, and a sweep whose trials were all stopped early.
    tracking = SweepTracking(uri, "only-pruned")
    empty_id = mlflow_server.client().create_experiment("no-sweep-here")
    assert empty_id
    with pytest.raises(ValueError, match="experiment 'no-sweep-here' has no sweep"):
        export_best(uri, experiment="no-sweep-here", output=tmp_path / "a.cfg")
    parent_id = tracking.start_parent("only-pruned", {}, {}, "")
    run_id = tracking.trial_run(parent_id, "t1", "trial_t1")
    tracking.log_trial_start(run_id, {"x": 1}, "[training]\nseed = 1\n")
    tracking.log_metrics(run_id, {"score": 0.5, "best_score": 0.5}, step=10)
    tracking.end_trial(run_id, "pruned")
    tracking.end_parent(parent_id, {}, {})
    with pytest.raises(ValueError, match=f"sweep {parent_id} has no finished trial with metric 'best_score'"):
        export_best(uri, experiment="only-pruned", output=tmp_path / "a.cfg")
    with pytest.raises(ValueError, match=f"sweep {parent_id} has no finished trial"):  # with neither: the newest sweep
        export_best(uri, output=tmp_path / "a.cfg")
    assert not (tmp_path / "a.cfg").exists()

    for args, message in [
        (["--experiment", "no-such-sweep"], "error: no MLflow experiment named 'no-such-sweep'"),
        (["--experiment", "only-pruned"], f"error: sweep {parent_id} has no finished trial with metric 'best_score'"),
        ([], f"error: sweep {parent_id} has no finished trial with metric 'best_score'"),  # the newest sweep
    ]:
        proc = run_cli("export", *args, "--tracking-uri", uri, "-o", str(tmp_path / "b.cfg"))
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(message), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b.cfg").exists()


def test_cli_export_of_an_unknown_parent_run(mlflow_server, tmp_path):
    proc = run_cli("export", "--parent-run", "0" * 32, "--tracking-uri", mlflow_server.uri, "-o", str(tmp_path / "b.cfg"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: "), proc.stderr[-500:]
    assert "Traceback" not in proc.stderr
