"""Sweeps end to end (search/sweep/driver.py, search/tracking/mlflow.py) on real parts: the
session's local Ray cluster, a real `mlflow server` (or the default SQLite
store), real Optuna samplers and ASHA. The sweeps are tiny (2-4 trials of about
a second of training each, see sweep_fixtures.FAST)."""

import glob
import json
import os
import pickle
import signal
import subprocess
from pathlib import Path
from typing import List

import optuna
import pytest
from confection import Config
from ray.tune.search.optuna import OptunaSearch
from search_testing import PATHS, REPO
from sweep_fixtures import ARCHSWEEP, FAST, SPACE, TAGGER_DIMENSIONS, cli_overrides, kill_driver_when, subprocess_env, tune_snapshot

from search.space import DIST_KEY, Space
from search.sweep import DefineByRun, SweepSettings, sweep
from search.sweep.outcome import TrialOutcome
from search.sweep.trial import SEED_KEY, derive_seed
from search.sweep.tune_compat import PruningAwareOptunaSearch
from search.tracking.mlflow import code_version
from search.training.config import load_config

TrialState = optuna.trial.TrialState
MLFLOW_STATUS = {"finished": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


def _shown(value) -> str:
    """A value as the tracking logs it as an MLflow param."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _at(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _children(client, parent) -> List:
    return client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", max_results=1000
    )


def _sweeps(client, experiment: str) -> List:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    return client.search_runs([found.experiment_id], filter_string="tags.`archsweep.kind` = 'sweep'", max_results=100)


def _artifact_text(client, run_id: str, path: str, dst: Path) -> str:
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst))).read_text()


# ---------------------------------------------------------------- the session's sweep (TPE + ASHA, MLflow server)


@pytest.fixture(scope="module")
def tree(finished_sweep, tmp_path_factory):
    """The MLflow runs of the session's sweep, read once."""
    client = finished_sweep.server.client()
    parents = _sweeps(client, finished_sweep.settings.experiment)
    assert len(parents) == 1, [p.info.run_id for p in parents]
    parent = parents[0]
    children = _children(client, parent)
    downloads = tmp_path_factory.mktemp("artifacts")
    configs = {c.info.run_id: _artifact_text(client, c.info.run_id, "config.cfg", downloads / c.info.run_id) for c in children}
    return client, parent, children, configs, downloads


def test_sweep_has_one_parent_run(finished_sweep, tree):
    client, parent, children, _, downloads = tree
    result = finished_sweep.result
    assert parent.info.run_id == result.parent_run_id
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    space = Space.from_disk(SPACE, FAST)
    assert tags["archsweep.kind"] == "sweep"
    assert tags["archsweep.space_hash"] == space.digest
    assert (tags["archsweep.search"], tags["archsweep.scheduler"], tags["archsweep.seed"]) == ("tpe", "asha", "0")
    assert tags["archsweep.code_version"] == code_version()
    assert _artifact_text(client, parent.info.run_id, "space.cfg", downloads / "parent") == space.text
    finished = [c for c in children if c.data.tags["archsweep.status"] == "finished"]
    best = max(finished, key=lambda c: c.data.metrics["best_score"])
    assert parent.data.metrics["best_score"] == best.data.metrics["best_score"]
    assert tags["archsweep.best_run"] == best.info.run_id
    for status in ("finished", "pruned", "failed"):
        assert parent.data.metrics[f"trials_{status}"] == sum(c.data.tags["archsweep.status"] == status for c in children)


def test_one_child_run_per_trial(finished_sweep, tree):
    _, parent, children, _, _ = tree
    result = finished_sweep.result
    assert len(children) == 4
    trial_ids = [c.data.tags["archsweep.trial_id"] for c in children]
    assert len(set(trial_ids)) == 4
    assert set(trial_ids) == {t.trial_id for t in result.trials}
    assert {c.info.run_id for c in children} == {t.run_id for t in result.trials}
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["archsweep.kind"] == "trial"
        assert child.info.experiment_id == parent.info.experiment_id


def test_child_params_are_the_searched_values_and_the_seed(tree):
    _, _, children, configs, _ = tree
    seeds = set()
    for child in children:
        params = child.data.params
        assert set(params) == set(TAGGER_DIMENSIONS) | {"training.seed"}
        config = Config().from_str(configs[child.info.run_id], interpolate=False)
        for name in TAGGER_DIMENSIONS:
            assert params[name] == _shown(_at(config, name)), name
        assert params["training.seed"] == str(config["training"]["seed"])
        seeds.add(int(params["training.seed"]))
    # Each trial's seed derives from the sweep seed (0) and its Optuna trial number.
    assert seeds == {derive_seed(0, number) for number in range(4)}


def test_child_config_is_a_plain_loadable_config(tree, tmp_path):
    _, _, children, configs, _ = tree
    for child in children:
        text = configs[child.info.run_id]
        assert DIST_KEY not in text
        path = tmp_path / f"{child.info.run_id}.cfg"
        path.write_text(text)
        config = load_config(path)
        assert config["corpora"]["train"]["limit"] == 200  # the sweep's overrides are in it
        assert config["components"]["tagger"]["model"]["tok2vec"]["width"] in (32, 64)


def test_trial_status_tags_match_mlflow_run_status(finished_sweep, tree):
    _, _, children, _, _ = tree
    statuses = [c.data.tags["archsweep.status"] for c in children]
    assert set(statuses) <= {"finished", "pruned"}
    assert "finished" in statuses
    for child in children:
        assert child.info.status == MLFLOW_STATUS[child.data.tags["archsweep.status"]]
        assert child.info.end_time is not None
    summaries = {t.run_id: t for t in finished_sweep.result.trials}
    for child in children:
        summary = summaries[child.info.run_id]
        assert summary.status == child.data.tags["archsweep.status"]
        assert summary.best_score == child.data.metrics["best_score"]
        assert summary.values == {k: v for k, v in child.data.params.items() if k in TAGGER_DIMENSIONS}


def test_metrics_are_logged_per_evaluation(tree):
    client, _, children, _, _ = tree
    for child in children:
        history = client.get_metric_history(child.info.run_id, "score")
        steps = [m.step for m in history]
        assert steps and steps[0] == 10  # the first evaluation (eval_frequency 10)
        assert steps == sorted(steps), steps
        assert child.data.metrics["best_score"] == max(m.value for m in history)
        if child.data.tags["archsweep.status"] == "finished":
            assert len(set(steps)) > 1, steps  # 2 epochs, evaluated every 10 steps
            assert len(client.get_metric_history(child.info.run_id, "pos_acc")) == len(history)
            assert client.get_metric_history(child.info.run_id, "epoch")[-1].value == 2
        assert {"loss_tagger", "words", "words_per_second"} <= set(child.data.metrics)


def test_sweep_result(finished_sweep):
    result = finished_sweep.result
    assert result.experiment == "e2e-tagger"
    assert result.tracking_uri == finished_sweep.server.uri
    assert result.best_config_path is not None and result.best_config_path.is_file()
    assert result.storage_path.is_dir()
    # Best first: the finished trials by best score, then the others.
    statuses = [t.status for t in result.trials]
    assert statuses == sorted(statuses, key=lambda s: s != "finished")
    finished = [t.best_score for t in result.trials if t.status == "finished"]
    assert finished == sorted(finished, reverse=True)
    text = result.best_config_path.read_text()
    assert DIST_KEY not in text and result.trials[0].trial_id in text
    # One progress line per trial.
    assert sorted(line.split(":")[0] for line in finished_sweep.progress) == sorted(f"trial {t.trial_id}" for t in result.trials)


def test_trials_share_worker_processes(finished_sweep):
    """4 trials, 2 at a time: a worker process runs a trial after another (reuse_actors),
    so the imports and the corpus cache of a worker serve several trials."""
    result = finished_sweep.result
    pids = set()
    for trial in result.trials:
        lines = (result.storage_path / f"trial_{trial.trial_id}" / "result.json").read_text().splitlines()
        pids.update(json.loads(line)["pid"] for line in lines if line.strip())
    assert len(result.trials) == 4 and len(pids) < 4


def test_optuna_was_told_what_mlflow_shows(finished_sweep, tree):
    """The searcher state Tune saved: a trial ASHA stopped is PRUNED for Optuna
    (not COMPLETE with its truncated score), a finished one COMPLETE with its
    final score."""
    _, _, children, _, _ = tree
    (state_path,) = glob.glob(str(finished_sweep.result.storage_path / "searcher-state-*.pkl"))
    with open(state_path, "rb") as handle:
        state = pickle.load(handle)
    study, ot_trials = state["_ot_study"], state["_ot_trials"]
    assert len(study.trials) == 4
    expected = {"finished": TrialState.COMPLETE, "pruned": TrialState.PRUNED}
    for child in children:
        frozen = study.trials[ot_trials[child.data.tags["archsweep.trial_id"]].number]
        assert frozen.state == expected[child.data.tags["archsweep.status"]], child.data.tags
        if frozen.state == TrialState.COMPLETE:
            assert frozen.value == child.data.metrics["score"]


# ---------------------------------------------------------------- PruningAwareOptunaSearch (no cluster)


def _searcher(cls=PruningAwareOptunaSearch):
    space = Space.from_disk(SPACE)
    searcher = cls(space=DefineByRun(space, 0), metric="score", mode="max", sampler=optuna.samplers.TPESampler(seed=0))
    return searcher, space


def _frozen(searcher, trial_id: str):
    return searcher._ot_study.trials[searcher._ot_trials[trial_id].number]


def test_define_by_run_suggests_the_space_and_a_seed():
    searcher, space = _searcher()
    config = searcher.suggest("t1")
    assert set(config) == set(TAGGER_DIMENSIONS) | {SEED_KEY}
    assert config[SEED_KEY] == derive_seed(0, 0)
    assert config["components.tagger.model.tok2vec.width"] in range(4)  # the ordinal's index
    assert searcher.suggest("t2")[SEED_KEY] == derive_seed(0, 1)


EARLY = {"score": 0.5, "training_iteration": 1, "training_finished": False}
FINAL = {"score": 0.7, "training_iteration": 2, "training_finished": True}


@pytest.mark.parametrize(
    "cls,results,complete,error,state,value",
    [
        # ASHA stopped it after its first evaluation: pruned, not complete.
        (PruningAwareOptunaSearch, [EARLY], EARLY, False, TrialState.PRUNED, 0.5),
        # Training ended by itself: complete with its final score.
        (PruningAwareOptunaSearch, [EARLY, FINAL], FINAL, False, TrialState.COMPLETE, 0.7),
        # The trial raised: failed, even though it had reported.
        (PruningAwareOptunaSearch, [EARLY], EARLY, True, TrialState.FAIL, None),
        (PruningAwareOptunaSearch, [EARLY], None, True, TrialState.FAIL, None),
        # Why the subclass exists: Ray's OptunaSearch tells Optuna that an early-stopped
        # trial is COMPLETE with its truncated score (and so does it for an errored one
        # that had reported), so TPE learns from scores of unequal budgets.
        (OptunaSearch, [EARLY], EARLY, False, TrialState.COMPLETE, 0.5),
        (OptunaSearch, [EARLY], EARLY, True, TrialState.COMPLETE, 0.5),
        (OptunaSearch, [EARLY, FINAL], FINAL, False, TrialState.COMPLETE, 0.7),
    ],
    ids=["aware-pruned", "aware-finished", "aware-error", "aware-error-no-result",
         "ray-pruned-is-complete", "ray-error-is-complete", "ray-finished"],
)
def test_what_optuna_is_told_when_a_trial_ends(cls, results, complete, error, state, value):
    searcher, _ = _searcher(cls)
    searcher.suggest("t1")
    for result in results:
        searcher.on_trial_result("t1", result)
    searcher.on_trial_complete("t1", complete, error=error)
    frozen = _frozen(searcher, "t1")
    assert frozen.state == state
    assert frozen.value == value
    assert frozen.intermediate_values == {r["training_iteration"]: r["score"] for r in results}
    # A second completion (Tune may send one) changes nothing.
    searcher.on_trial_complete("t1", FINAL)
    assert _frozen(searcher, "t1").state == state


def test_the_stopping_result_reaches_optuna():
    """Tune's real order for a trial ASHA stops at its first evaluation:
    suggest, then on_trial_complete(result) with no on_trial_result."""
    searcher, _ = _searcher()
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", EARLY)
    frozen = _frozen(searcher, "t1")
    assert frozen.state == TrialState.PRUNED
    assert frozen.intermediate_values == {1: 0.5}


def test_a_trial_the_searcher_never_suggested_is_not_told_to_optuna():
    """A resumed sweep can restart a trial that the searcher's checkpoint predates
    (the driver killed between Tune's snapshot and the searcher's save): its results
    and completion leave Optuna's study as it was, and raise nothing."""
    searcher, _ = _searcher()
    searcher.suggest("t1")
    searcher.on_trial_result("unknown", EARLY)
    searcher.on_trial_complete("unknown", FINAL)
    searcher.on_trial_complete("t1", FINAL)
    trials = searcher._ot_study.get_trials(deepcopy=False)
    assert [(t.state, t.value) for t in trials] == [(TrialState.COMPLETE, 0.7)]


def test_a_trial_at_ashas_last_rung_is_complete_for_optuna():
    """ASHA stops a trial at max_t before its closing report: Optuna is told
    COMPLETE with the trial's best score, as for one that ended by itself."""
    searcher, _ = _searcher()
    searcher.outcome = TrialOutcome("training_iteration", 1)
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {**EARLY, "best_score": 0.6})
    frozen = _frozen(searcher, "t1")
    assert (frozen.state, frozen.value) == (TrialState.COMPLETE, 0.6)


def test_searcher_state_survives_save_and_restore(tmp_path):
    """What --resume relies on: the pickled searcher keeps the study (states
    included) and goes on proposing what the uninterrupted one would."""
    searcher, _ = _searcher()
    for trial_id in ("t1", "t2"):
        searcher.suggest(trial_id)
        searcher.on_trial_result(trial_id, EARLY)
    searcher.on_trial_complete("t1", EARLY)
    path = str(tmp_path / "searcher.pkl")
    searcher.save(path)
    restored, _ = _searcher()
    restored.restore(path)
    assert isinstance(restored, PruningAwareOptunaSearch)
    assert [t.state for t in restored._ot_study.trials] == [TrialState.PRUNED, TrialState.RUNNING]
    restored.on_trial_complete("t2", FINAL)
    searcher.on_trial_complete("t2", FINAL)
    assert _frozen(restored, "t2").state == TrialState.COMPLETE
    assert restored.suggest("t3") == searcher.suggest("t3")


# ---------------------------------------------------------------- a failing trial

FAILING_SEED = 5  # Optuna RandomSampler(5) proposes widths 31, 32, 32 for the three trials


def _failing_space(path: Path) -> Path:
    """spaces/tagger.cfg with a character BiLSTM whose width is 31 or 32: the
    space validates (filling the config does not build the model), but an odd
    width raises ValueError when a trial builds its model."""
    config = Config().from_disk(SPACE, interpolate=False)
    config["paths"].update({"train": PATHS["paths.train"], "dev": PATHS["paths.dev"]})
    config["components"]["tagger"]["model"]["tok2vec"] = {
        "@architectures": "spacy.HashCharEmbedBiLSTM.v1",
        "width": {DIST_KEY: "choice.v1", "values": [32, 31]},
        "depth": 1, "embed_size": 1000, "maxout_pieces": 3, "nM": 16, "nC": 4, "pretrained_vectors": None,
    }
    path.write_text(config.to_str())
    return path


@pytest.fixture(scope="module")
def failing_sweep(ray_cluster, mlflow_server, tmp_path_factory):
    """Three trials (random search, 2 at a time, no early stopping), the first of which fails."""
    tmp = tmp_path_factory.mktemp("failing")
    space_path = _failing_space(tmp / "bilstm.cfg")
    Space.from_disk(space_path).validate()  # the failure is a run-time one
    overrides = {k: v for k, v in FAST.items() if not k.startswith(("components.", "paths."))}
    settings = SweepSettings(
        space_path=str(space_path), num_samples=3, max_concurrent=2, address=ray_cluster.address,
        tracking_uri=mlflow_server.uri, experiment="failing", storage=str(tmp / "sweeps"),
        seed=FAILING_SEED, search="random", scheduler="none", overrides=overrides,
    )
    result = sweep(settings)  # returns normally
    client = mlflow_server.client()
    (parent,) = _sweeps(client, "failing")
    children = _children(client, parent)
    assert len(children) == 3
    widths = [c.data.params["components.tagger.model.tok2vec.width"] for c in children]
    assert sorted(widths) == ["31", "32", "32"]  # both kinds of trial ran
    failed = next(c for c, width in zip(children, widths) if width == "31")
    return result, client, parent, children, failed, tmp


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(failing_sweep):
    result, client, parent, children, failed, tmp = failing_sweep
    assert failed.data.tags["archsweep.status"] == "failed"
    assert failed.info.status == "FAILED"
    assert failed.data.tags["archsweep.error"]
    assert "error.txt" in [a.path for a in client.list_artifacts(failed.info.run_id)]
    assert "best_score" not in failed.data.metrics
    for child in children:
        if child is not failed:
            assert child.data.tags["archsweep.status"] == "finished", child.data.tags
            assert child.info.status == "FINISHED"
            assert "archsweep.error" not in child.data.tags
    assert parent.info.status == "FINISHED"
    assert (parent.data.metrics["trials_failed"], parent.data.metrics["trials_finished"]) == (1, 2)
    assert [t.status for t in result.trials] == ["finished", "finished", "failed"]
    assert result.trials[-1].run_id == failed.info.run_id
    assert result.best_config_path is not None and result.best_config_path.is_file()


def test_a_failed_trial_records_its_error(failing_sweep):
    result, client, parent, children, failed, tmp = failing_sweep
    error = failed.data.tags["archsweep.error"]
    assert "BiLSTM nO must be a positive even number" in error and "got nO=31" in error
    error_txt = _artifact_text(client, failed.info.run_id, "error.txt", tmp / "dl")
    assert "ValueError: BiLSTM nO must be a positive even number" in error_txt
    assert "got nO=31" in result.trials[-1].error


# ---------------------------------------------------------------- the CLI, default SQLite store


def _workdir(tmp_path: Path) -> Path:
    """A working directory with the repository's data/ and spaces/ (the space's relative paths)."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("data", "spaces"):
        (work / name).symlink_to(REPO / name)
    return work


def _archsweep(args: List[str], cwd: Path, timeout: float, log: Path) -> subprocess.CompletedProcess:
    """Run the console script in its own process group; on timeout stop the group and fail."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [str(ARCHSWEEP), *args], cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=err,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
            pytest.fail(f"archsweep {' '.join(args[:2])} did not end within {timeout} s:\n{log.read_text()[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), log.read_text())


def test_cli_sweep_with_the_default_sqlite_store(ray_cluster, tmp_path):
    from mlflow.tracking import MlflowClient

    work = _workdir(tmp_path)
    overrides = {k: v for k, v in FAST.items() if not k.startswith("paths.")}  # relative corpus paths
    proc = _archsweep(
        ["sweep", "spaces/tagger.cfg", "--num-samples", "2", "--address", ray_cluster.address,
         "--scheduler", "none", "--search", "random", "--seed", "1", *cli_overrides(overrides)],
        work, timeout=300, log=tmp_path / "stderr.log",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "mlflow.db").is_file()
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("trial ") and "status" in line)
    assert lines[header].split() == ["trial", "status", "best", "score", "values"]
    rows = [line.split() for line in lines[header + 1 : header + 3]]
    assert [row[1] for row in rows] == ["finished", "finished"]
    assert float(rows[0][2]) >= float(rows[1][2])  # best first
    assert lines[header + 3].startswith("best config: ")
    best = Path(lines[header + 3][len("best config: "):])
    assert best.is_file() and best.resolve().is_relative_to((work / "runs" / "sweeps").resolve())
    assert sum(line.startswith("trial ") and ": finished, best score" in line for line in lines) == 2

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tagger")  # the space file's name
    assert experiment.artifact_location == (work / "mlartifacts" / "tagger").resolve().as_uri()
    (parent,) = _sweeps(client, "tagger")
    assert parent.info.run_id in lines[header - 1]
    children = _children(client, parent)
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        assert (work / "mlartifacts" / "tagger" / child.info.run_id / "artifacts" / "config.cfg").is_file()


# ---------------------------------------------------------------- kill the driver, then --resume


def test_kill_the_driver_and_resume(ray_cluster, mlflow_server, tmp_path):
    work = _workdir(tmp_path)
    storage = tmp_path / "sweeps"
    client = mlflow_server.client()
    # Trials of 3 s of training each, whatever their config (so the kill lands
    # in a running trial, after Tune's 2-s snapshot has seen it), run to the end.
    overrides = {**FAST, "training.max_epochs": 0, "training.max_seconds": 3}
    args = ["sweep", "spaces/tagger.cfg", "--num-samples", "4", "--max-concurrent", "1", "--address", ray_cluster.address,
            "--tracking-uri", mlflow_server.uri, "--experiment", "killed", "--storage", str(storage), "--seed", "3",
            "--scheduler", "none", *cli_overrides(overrides)]
    # Kill once a trial has ended, another is running, and Tune's snapshot holds both
    # so and knows every trial MLflow has a run for (what ended after the last
    # snapshot would legitimately run again).
    def ended_and_running():
        parents = _sweeps(client, "killed") if client.get_experiment_by_name("killed") else []
        children = _children(client, parents[0]) if parents else []
        runs = {c.data.tags["archsweep.trial_id"]: (c.info.run_id, c.data.tags["archsweep.status"]) for c in children}
        ended = {t: r for t, r in runs.items() if r[1] in ("finished", "pruned")}
        snapshot = tune_snapshot(storage)
        running = [t for t, r in runs.items() if r[1] == "running" and snapshot.get(t) == "RUNNING"]
        if ended and running and all(snapshot.get(t) == "TERMINATED" for t in ended) and set(runs) <= set(snapshot):
            return runs, ended, running
        return None

    runs, ended, running = kill_driver_when(args, work, tmp_path / "first.log", ended_and_running, wait_s=180)
    assert len(ended) < 4
    interrupted = {t: runs[t][0] for t in running}

    # The cluster outlives its driver; the killed driver's trial actor goes with its job.
    raylet = ray_cluster.raylet_pid()
    ray_cluster.wait_for_trials_to_end()
    assert ray_cluster.raylet_pid() == raylet
    (parent,) = _sweeps(client, "killed")
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"  # nobody closed it

    resumed = _archsweep([*args, "--resume"], work, timeout=300, log=tmp_path / "resume.log")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    (parent,) = _sweeps(client, "killed")  # still one sweep
    assert parent.info.status == "FINISHED"
    children = _children(client, parent)
    trial_ids = [c.data.tags["archsweep.trial_id"] for c in children]
    assert len(children) == 4 and len(set(trial_ids)) == 4, trial_ids
    assert not [c for c in children if c.info.status == "RUNNING" or c.data.tags["archsweep.status"] == "running"]
    by_trial = {c.data.tags["archsweep.trial_id"]: c for c in children}
    for trial_id, (run_id, status) in ended.items():
        assert by_trial[trial_id].info.run_id == run_id
        assert by_trial[trial_id].data.tags["archsweep.status"] == status
    # The trial the kill interrupted ran again, into the run it had.
    for trial_id, run_id in interrupted.items():
        assert by_trial[trial_id].info.run_id == run_id
    assert [c.data.tags["archsweep.status"] for c in children] == ["finished"] * 4  # no early stopping here
    for child in children:
        assert child.info.status == MLFLOW_STATUS[child.data.tags["archsweep.status"]]
        assert set(child.data.params) == set(TAGGER_DIMENSIONS) | {"training.seed"}
    # Seeds of trial numbers 0-3: the restored searcher went on, it did not start over.
    assert {int(c.data.params["training.seed"]) for c in children} == {derive_seed(3, n) for n in range(4)}
    best = Path(resumed.stdout.split("best config: ", 1)[1].splitlines()[0])
    assert best.is_file() and best.resolve().is_relative_to(storage.resolve())
    assert parent.data.tags["archsweep.storage"] == str(best.parent)


def test_a_sweep_whose_trials_reach_max_t_has_finished_trials(ray_cluster, mlflow_server, tmp_path):
    """ASHA stops every trial at max_t (one evaluation), before the trial ends by
    itself: each such trial trained all it was allowed, so it is finished in MLflow,
    the live table and for Optuna, and the sweep exports its best config."""
    settings = SweepSettings(
        space_path=str(SPACE), num_samples=2, max_concurrent=2, address=ray_cluster.address,
        tracking_uri=mlflow_server.uri, experiment="max-t", storage=str(tmp_path / "sweeps"), seed=0,
        search="tpe", scheduler="asha", time_attr="evaluations", grace_period=1, max_t=1, overrides=dict(FAST),
    )
    live_table: List[str] = []
    result = sweep(settings, live_table=live_table.append)
    for trial in result.trials:
        records = [json.loads(line) for line in (result.storage_path / f"trial_{trial.trial_id}" / "result.json").read_text().splitlines()]
        # stopped at its first evaluation, not ended by itself
        assert [r["training_finished"] for r in records] == [False], trial.trial_id
    assert [t.status for t in result.trials] == ["finished", "finished"]
    client = mlflow_server.client()
    (parent,) = _sweeps(client, "max-t")
    children = _children(client, parent)
    assert [(c.data.tags["archsweep.status"], c.info.status) for c in children] == [("finished", "FINISHED")] * 2
    assert result.best_config_path is not None and Path(result.best_config_path).is_file()
    assert live_table[-1].split()[1:5] == ["0", "2", "0", "0"]  # running, finished, pruned, failed
    (state_path,) = glob.glob(str(result.storage_path / "searcher-state-*.pkl"))
    with open(state_path, "rb") as handle:
        study = pickle.load(handle)["_ot_study"]
    # the two trials that ran; the space's further enqueued trials wait in the study, for a
    # resumed sweep with more samples
    states = [t.state for t in study.trials]
    assert states[:2] == [TrialState.COMPLETE] * 2
    assert states[2:] == [TrialState.WAITING] * (len(Space.from_disk(SPACE).enqueued()) - 1)


@pytest.mark.parametrize("time_attr, result_key", [("evaluations", "training_iteration"), ("epochs", "epochs_trained")])
def test_asha_rungs_count_what_time_attr_names(time_attr, result_key):
    from search.sweep.algorithms import scheduler

    asha = scheduler(SweepSettings(space_path=str(SPACE), time_attr=time_attr, grace_period=0.25, max_t=4))
    assert asha._time_attr == result_key
    # rungs at 0.25 .. 4 (reduction factor 2): fractional epochs are milestones too
    assert sorted(milestone for milestone, _ in asha._brackets[0]._rungs) == [0.25, 0.5, 1.0, 2.0, 4.0]
