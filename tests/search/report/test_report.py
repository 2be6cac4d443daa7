"""Reviewing a sweep (search/report/build.py, search/report/mlflow.py, `archsweep report`)
on real sweeps: the session's TPE + ASHA sweep tracked by a real `mlflow server`,
and the session's CLI sweep in the default SQLite store. The pure core is also
given small trial tables built from real sampled configs, for the cases a tiny
sweep need not produce (fewer than 2 finished trials, a conditional space)."""

import csv
import html
import json
import logging
import statistics
import subprocess
from pathlib import Path
from typing import Dict, List

import matplotlib.image
import numpy
import pytest
from confection import Config
from sweep_fixtures import ARCHSWEEP, FAST, SPACE, TAGGER_DIMENSIONS, subprocess_env

from search.report.build import MIN_TRIALS_FOR_IMPORTANCE, PLOTS, SweepRecord, TrialRecord, build_report
from search.report.mlflow import log_report
from search.space import DIST_KEY, RandomSuggester, Space, show_value
from search.training.config import load_config
from search.training.debug import describe_pipeline

REPORT_FILES = {"report.html", "trials.csv", "importance.json", *(f"{name}.png" for name in PLOTS)}


def _children(client, parent_run_id: str) -> List:
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=1000
    )


def _rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf8") as table:
        return list(csv.DictReader(table))


def _archsweep(args: List[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(ARCHSWEEP), *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def parent_report(finished_sweep, tmp_path_factory):
    """The report/ artifacts of the session sweep's parent run, downloaded."""
    client = finished_sweep.server.client()
    run_id = finished_sweep.result.parent_run_id
    listed = {Path(a.path).name for a in client.list_artifacts(run_id, "report")}
    local = Path(client.download_artifacts(run_id, "report", str(tmp_path_factory.mktemp("parent-report"))))
    return client, run_id, listed, local


def test_the_parent_run_holds_the_report(finished_sweep, parent_report):
    client, run_id, listed, local = parent_report
    assert listed == REPORT_FILES
    # The same files stay beside best.cfg in the sweep's storage folder.
    stored = finished_sweep.result.storage_path / "report"
    assert finished_sweep.result.report_path == stored / "report.html"
    for name in REPORT_FILES:
        assert (local / name).read_bytes() == (stored / name).read_bytes(), name
    for name in PLOTS:
        pixels = matplotlib.image.imread(local / f"{name}.png")
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 500, (name, pixels.shape)
        assert len(numpy.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20, f"{name}.png is nearly blank"
    page = (local / "report.html").read_text(encoding="utf8")
    for name in PLOTS:
        assert f'id="plot-{name}"' in page
    for child in _children(client, run_id):
        assert child.data.tags["archsweep.trial_id"] in page
    assert "<script src" not in page  # plotly.js is inlined: the page opens offline
    assert client.get_run(run_id).info.status == "FINISHED"


def test_the_trial_table_matches_mlflow(parent_report, tmp_path):
    client, run_id, _, local = parent_report
    rows = {row["trial"]: row for row in _rows(local / "trials.csv")}
    children = _children(client, run_id)
    assert set(rows) == {c.data.tags["archsweep.trial_id"] for c in children}
    for child in children:
        row = rows[child.data.tags["archsweep.trial_id"]]
        assert row["status"] == child.data.tags["archsweep.status"]
        assert float(row["best_score"]) == pytest.approx(child.data.metrics["best_score"], abs=1e-6)
        scores = client.get_metric_history(child.info.run_id, "score")
        assert int(row["evaluations"]) == len(scores)
        assert int(row["last_step"]) == max(m.step for m in scores)
        speeds = [m.value for m in client.get_metric_history(child.info.run_id, "words_per_second")]
        assert float(row["words_per_second"]) == pytest.approx(statistics.median(speeds), abs=0.5)
        sizes = client.get_metric_history(child.info.run_id, "model_params")
        assert [(m.step, m.value) for m in sizes] == [(0, float(row["model_params"]))]  # logged once
        assert row["seed"] == child.data.params["training.seed"]
        for name in TAGGER_DIMENSIONS:
            assert row[name] == child.data.params[name]
    # Finished trials first, best first.
    statuses = [row["status"] for row in rows.values()]
    finished = [float(r["best_score"]) for r in rows.values() if r["status"] == "finished"]
    assert statuses == sorted(statuses, key=lambda s: s != "finished")
    assert finished == sorted(finished, reverse=True)
    # The logged size is the model's: the parameter count `archsweep debug model` gives for the best trial's config.
    best = next(c for c in children if c.data.tags["archsweep.trial_id"] == next(iter(rows)))
    config_path = Path(client.download_artifacts(best.info.run_id, "config.cfg", str(tmp_path)))
    counted = sum(info["params"] for info in describe_pipeline(load_config(config_path)).values())
    assert int(rows[best.data.tags["archsweep.trial_id"]]["model_params"]) == counted


def test_a_small_sweeps_report_says_why_importance_is_not_shown(parent_report):
    """4 trials: too few for parameter importance; the page says so, with no bars."""
    _, _, _, local = parent_report
    importance = json.loads((local / "importance.json").read_text())
    finished = [r for r in _rows(local / "trials.csv") if r["status"] == "finished"]
    assert importance["importance"] == {} and importance["spread"] == {}
    note = (f"not shown: parameter importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials, "
            f"this sweep has {len(finished)}.")
    assert importance["note"].startswith(note)
    assert html.escape(importance["note"]) in (local / "report.html").read_text(encoding="utf8")


def test_the_report_names_the_score_and_marks_the_pareto_front(parent_report):
    """The session sweep's report: the score is pos_acc (spaces/tagger.cfg's score
    weights) in %, and the Pareto front is the finished trials that no other
    finished trial beats on score, words/s and parameters (checked here from trials.csv)."""
    _, _, _, local = parent_report
    page = (local / "report.html").read_text(encoding="utf8")
    rows = _rows(local / "trials.csv")
    best = next(r for r in rows if r["status"] == "finished")
    assert f"Best: trial <b>{best['trial']}</b>, pos_acc <b>{float(best['best_score']) * 100:.2f} %</b> on the dev data." in page
    assert "<th title='best_score'>best pos_acc (%)</th>" in page
    assert f"<td>{float(best['best_score']) * 100:.2f}</td>" in page and f"<td>{best['best_score']}</td>" not in page
    finished = [(r["trial"], float(r["best_score"]), float(r["words_per_second"]), -int(r["model_params"])) for r in rows if r["status"] == "finished"]
    front = {a[0] for a in finished if not any(all(y >= x for x, y in zip(a[1:], b[1:])) and b[1:] != a[1:] for b in finished)}
    assert front and {r["trial"] for r in rows if r["pareto_front"] == "yes"} == front
    for trial in front:
        assert f"<tr><td class='s'>{trial}</td><td>" in page.split("<th>Pareto front</th>", 1)[1]


def test_archsweep_report_rebuilds_the_same_files_from_mlflow(finished_sweep, parent_report, tmp_path):
    """`archsweep report` for a past sweep, from the tracking server alone:
    the experiment's latest sweep is this one, and every file is identical to
    what the sweep logged at its end."""
    _, _, _, local = parent_report
    out = tmp_path / "review"
    proc = _archsweep(["report", "--experiment", finished_sweep.settings.experiment, "--tracking-uri", finished_sweep.server.uri,
                       "--output", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == REPORT_FILES
    for name in REPORT_FILES:
        assert (out / name).read_bytes() == (local / name).read_bytes(), name
    assert proc.stdout.splitlines()[-1] == f"wrote {out / 'report.html'}, {out / 'trials.csv'} and {len(PLOTS)} plots in {out}"


def test_archsweep_report_errors_are_one_line(finished_sweep, tmp_path):
    proc = _archsweep(["report", "--experiment", "no-such-sweep", "--tracking-uri", finished_sweep.server.uri], cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        f"error: no MLflow experiment named 'no-such-sweep' at {finished_sweep.server.uri}; the sweeps there, newest first: "
    ), lines[0]


def test_cli_sweep_reports_in_the_default_sqlite_store(cli_sweep, tmp_path):
    line = next(l for l in cli_sweep.stdout.splitlines() if l.startswith("report: "))
    stored = Path(line[len("report: "):].split(" (", 1)[0])
    assert stored.is_file() and stored.resolve().is_relative_to((cli_sweep.workdir / "runs" / "sweeps").resolve())
    proc = _archsweep(["report", "--experiment", "tagger", "--output", str(tmp_path / "review")], cwd=cli_sweep.workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in REPORT_FILES:
        assert (tmp_path / "review" / name).read_bytes() == (stored.parent / name).read_bytes(), name
    # Two finished trials: importance is not shown, and the command says why.
    assert json.loads((stored.parent / "importance.json").read_text())["importance"] == {}
    printed = proc.stdout.splitlines()
    assert printed[0].startswith(f"parameter importance: not shown: parameter importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} "
                                 "finished trials, this sweep has 2.")


def test_a_report_failure_is_a_warning_not_the_sweeps_error(finished_sweep, tmp_path, caplog):
    client = finished_sweep.server.client()
    with caplog.at_level(logging.WARNING, logger="search.report.mlflow"):
        assert log_report(client, "0" * 32, tmp_path / "report") is None
    assert any("report could not be built or logged" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- the pure core on hand-made tables


def _trials(space: Space, statuses: List[str], score_of, seed: int = 0) -> List[TrialRecord]:
    """Trials with real sampled values of `space`, logged as MLflow would (strings)."""
    trials = []
    for number, status in enumerate(statuses):
        _, values = space.sample(RandomSuggester(seed + number))
        params = {k: show_value(v) for k, v in values.items()}
        score = score_of(values) if status != "failed" else None
        steps = 4 if status == "finished" else 1
        history = [(10 * (i + 1), score * (i + 1) / steps) for i in range(steps)] if score is not None else []
        trials.append(TrialRecord(f"run{number}", f"t{number:02d}", status, params, history, score, 1000.0 + number, 50000 + number, number))
    return trials


def test_too_few_finished_trials_give_a_note_not_an_error(tmp_path):
    space = Space.from_disk(SPACE, FAST)
    trials = _trials(space, ["finished", "pruned", "failed"], lambda values: 0.5)
    report = build_report(SweepRecord("tiny", "parent", "exp", space.text, trials), tmp_path)
    assert report.importance.values == {}
    assert report.importance.note.startswith(f"not shown: parameter importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials, "
                                             "this sweep has 1.")
    assert {p.name for p in tmp_path.iterdir()} == REPORT_FILES
    assert html.escape(report.importance.note) in report.html.read_text(encoding="utf8")
    assert [r["status"] for r in _rows(report.table)] == ["finished", "pruned", "failed"]


def _options_space() -> Space:
    """spaces/tagger.cfg whose embedding is an options.v1 choice: the CNN with its
    own dimensions, or a character BiLSTM with a conditional width."""
    config = Config().from_disk(SPACE, interpolate=False)
    tok2vec = dict(config["components"]["tagger"]["model"]["tok2vec"])
    config["components"]["tagger"]["model"]["tok2vec"] = {
        DIST_KEY: "options.v1",
        "cnn": tok2vec,
        "chars": {
            "@architectures": "spacy.HashCharEmbedBiLSTM.v1",
            "width": {DIST_KEY: "ordinal.v1", "values": [32, 64]},
            "depth": 1, "embed_size": 1000, "maxout_pieces": 3, "nM": 16, "nC": 4, "pretrained_vectors": None,
        },
    }
    return Space(Config().from_str(config.to_str(), interpolate=False))


def test_importance_with_a_conditional_space(tmp_path):
    """PED-ANOVA assesses the options dimension and the dimensions that exist
    under only one option; the score here depends on the learning rate alone."""
    space = _options_space()
    lr = "training.optimizer.learn_rate"
    trials = _trials(space, ["finished"] * 30, lambda values: values[lr] * 10)
    assert {t.params["components.tagger.model.tok2vec"] for t in trials} == {"cnn", "chars"}
    report = build_report(SweepRecord("conditional", "parent", "exp", space.text, trials), tmp_path)
    importance = report.importance.values
    assert sum(importance.values()) == pytest.approx(1.0)
    assert next(iter(importance)) == lr
    assert "components.tagger.model.tok2vec" in importance
    assert "components.tagger.model.tok2vec.chars.width" in importance  # exists only under "chars"
    # The parallel coordinates show a conditional dimension as n/a where it does not exist.
    assert "n/a" in report.html.read_text(encoding="utf8")
