"""The MLflow tracking server goes away during a sweep and comes back
(search/tracking/mlflow.py's queue, search/sweep/driver.py's end, `archsweep sync`), or is
away when the sweep starts (its parent run is queued too).

Real parts only: an `mlflow server` that is stopped (its whole process group)
and started again on the same port, SQLite store and artifact root; sweeps on
the session's Ray cluster (sweep_fixtures.FAST trials of about a second).
What each trial really reported is read from Ray Tune's own records
(result.json in the trial's folder) and looked up in MLflow's metric history.
"""

import json
import logging
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from procs import stop_process_group
from search_testing import REPO
from sweep_fixtures import (
    ARCHSWEEP,
    FAST,
    MLFLOW,
    SPACE,
    cli_overrides,
    free_port,
    kill_driver_when,
    subprocess_env,
    tune_snapshot,
    wait_for_mlflow,
)

from search.sweep import SweepSettings, sweep
from search.tracking.mlflow import PENDING_FILE, STATE_FILE, SweepTracking

MLFLOW_STATUS = {"finished": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
WAIT_S = 300  # bound of every wait for a process or a sweep (the 2-core test machine can be very busy)


@dataclass
class RestartableMlflowServer:
    """`mlflow server` on a fixed port whose SQLite store and artifact root
    outlive the process, so that it can go away and come back as the same server."""

    root: Path
    port: int
    proc: Optional[subprocess.Popen] = None
    starts: int = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    def start(self) -> None:
        args = [
            str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{self.db}",
            "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port),
            # one worker process (default 4): the server is started four times, and each worker imports MLflow
            "--workers", "1",
        ]
        self.starts += 1
        log = self.root / f"server-{self.starts}.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                args, cwd=self.root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=subprocess_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
            )
        wait_for_mlflow(self.uri, self.proc, log, WAIT_S)

    def stop(self) -> None:
        """The whole process group (the server and its workers): SIGTERM, then SIGKILL."""
        if self.proc is not None:
            stop_process_group(self.proc, grace=5.0)
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-outage")
    found = RestartableMlflowServer(root, free_port())
    found.start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture()
def tracking_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="search.tracking")
    return caplog


def _children(client, experiment: str, parent_run_id: str) -> List:
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=1000)


def _history(client, run_id: str, key: str = "score") -> List:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


# ---------------------------------------------------------------- the queue against a server that goes away


def test_queue_keeps_order_and_resolves_runs_created_during_an_outage(server, tmp_path, tracking_warnings):
    pending_path = tmp_path / PENDING_FILE
    tracking = SweepTracking(server.uri, "queue-outage", pending_path=str(pending_path))
    parent = tracking.start_parent("queue-outage", {}, {}, "space text")
    a = tracking.trial_run(parent, "a", "trial_a")
    tracking.log_metrics(a, {"score": 0.1}, step=1)
    assert tracking.pending == 0 and tracking.run_id_of(a) is not None  # online: written at once
    run_a = tracking.run_id_of(a)

    server.stop()
    tracking.log_metrics(a, {"score": 0.2}, step=2)
    b = tracking.trial_run(parent, "b", "trial_b")  # its run cannot be created now
    tracking.log_trial_start(b, {"x": 1}, "[x]\ny = 1\n")
    for step in (1, 2, 3):
        tracking.log_metrics(b, {"score": step / 10, "loss": 1.0 / step}, step=step)
    tracking.end_trial(b, "finished")
    tracking.end_trial(a, "pruned")
    assert tracking.run_id_of(b) is None
    assert tracking.pending == 1 + 1 + 2 + 3 + 2 + 2
    # mirrored in the sweep's folder, in order, as it is queued
    saved_text = pending_path.read_text()
    saved = [json.loads(line) for line in saved_text.splitlines()]
    assert [op["op"] for op in saved] == [
        "log_batch", "create_trial_run", "log_batch", "log_text", "log_batch", "log_batch", "log_batch",
        "log_batch", "set_terminated", "log_batch", "set_terminated",
    ]
    assert "cannot be reached" in tracking_warnings.text

    server.start()
    assert tracking.drain(WAIT_S) == 0
    assert not pending_path.exists()
    assert "reachable again" in tracking_warnings.text
    client = server.client()
    children = {c.data.tags["archsweep.trial_id"]: c for c in _children(client, "queue-outage", parent)}
    assert sorted(children) == ["a", "b"]
    assert children["a"].info.run_id == run_a
    run_b = children["b"].info.run_id
    assert tracking.run_id_of(b) == run_b
    assert _history(client, run_a) == [(1, 0.1), (2, 0.2)]
    assert _history(client, run_b) == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert _history(client, run_b, "loss") == [(1, 1.0), (2, 0.5), (3, 1.0 / 3)]
    assert (children["a"].info.status, children["a"].data.tags["archsweep.status"]) == ("KILLED", "pruned")
    assert (children["b"].info.status, children["b"].data.tags["archsweep.status"]) == ("FINISHED", "finished")
    assert children["b"].data.params == {"x": "1"}
    assert Path(client.download_artifacts(run_b, "config.cfg", str(tmp_path))).read_text() == "[x]\ny = 1\n"

    # The file as a driver killed during the outage leaves it, replayed by the next
    # one (`--resume`, `archsweep sync`) although all of it was written already: no change.
    replayed_path = tmp_path / "replayed.jsonl"
    replayed_path.write_text(saved_text)
    replay = SweepTracking(server.uri, "queue-outage", pending_path=str(replayed_path))
    assert replay.load_pending() == len(saved)
    assert replay.drain(WAIT_S) == 0 and not replay.dropped
    assert not replayed_path.exists()
    assert len(_children(client, "queue-outage", parent)) == 2
    assert _history(client, run_a) == [(1, 0.1), (2, 0.2)]
    assert _history(client, run_b) == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert (client.get_run(run_a).info.status, client.get_run(run_b).info.status) == ("KILLED", "FINISHED")

    # A second driver (a resumed sweep) finds the trial's run by its tags: no second run.
    again = SweepTracking(server.uri, "queue-outage")
    ref = again.trial_run(parent, "b", "trial_b")
    assert again.run_id_of(ref) == run_b
    # A request MLflow refuses (a param's value may not change) is dropped with a
    # warning, not retried; what follows it is still written.
    again.log_trial_start(ref, {"x": 2}, "[x]\ny = 2\n")
    again.log_metrics(ref, {"score": 0.4}, step=4)
    assert again.pending == 0
    assert [op["op"] for op, _ in again.dropped] == ["log_batch"]
    assert "the tracking server refused an operation" in tracking_warnings.text
    assert len(_children(client, "queue-outage", parent)) == 2
    assert _history(client, run_b) == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]
    assert client.get_run(run_b).data.params == {"x": "1"}


# ---------------------------------------------------------------- sweeps


def _settings(experiment: str, address: str, uri: str, storage: Path, num_samples: int, tracking_wait: float) -> SweepSettings:
    return SweepSettings(
        space_path=str(SPACE), num_samples=num_samples, max_concurrent=2, address=address, tracking_uri=uri,
        experiment=experiment, storage=str(storage), seed=0, search="tpe", scheduler="asha", grace_period=1,
        overrides=dict(FAST), tracking_wait=tracking_wait,
    )


def _tune_records(sweep_dir: Path) -> Dict[str, List[dict]]:
    """Each trial's results as Ray Tune wrote them in its folder (trial_ID/result.json)."""
    records = {}
    for path in sorted(sweep_dir.glob("trial_*/result.json")):
        records[path.parent.name.removeprefix("trial_")] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def _assert_mlflow_has_what_the_trials_reported(client, experiment: str, parent_run_id: str, sweep_dir: Path) -> None:
    records = _tune_records(sweep_dir)
    children = _children(client, experiment, parent_run_id)
    by_trial = {c.data.tags["archsweep.trial_id"]: c for c in children}
    assert len(children) == len(by_trial) == len(records), (sorted(by_trial), sorted(records))
    assert set(by_trial) == set(records)
    for trial_id, results in records.items():
        child = by_trial[trial_id]
        status = "finished" if results[-1].get("training_finished") else "pruned"
        assert child.data.tags["archsweep.status"] == status, trial_id
        assert child.info.status == MLFLOW_STATUS[status], trial_id
        # every evaluation (the closing `training_finished` result repeats the last one)
        evaluations = [(r["step"], r["score"]) for r in results if not r.get("training_finished")]
        assert evaluations, trial_id
        assert _history(client, child.info.run_id) == sorted(evaluations), trial_id


@dataclass
class Outage:
    """Stops the server when `ready()` first holds, starts it again right away
    (unless `restart` is False); runs in a thread beside the sweep."""

    server: RestartableMlflowServer
    ready: object  # () -> bool
    restart: bool = True
    stopped: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    errors: List[BaseException] = field(default_factory=list)

    def run(self) -> None:
        try:
            deadline = time.monotonic() + WAIT_S
            while not self.ready():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.2)
            self.server.stop()
            self.stopped.set()
            if self.restart:
                self.server.start()
        except BaseException as err:  # noqa: BLE001 - reported by the test, not lost in the thread
            self.errors.append(err)
        finally:
            self.done.set()


def _metrics_logged(db: Path, experiment: str) -> bool:
    """Whether the experiment has a metric in the server's SQLite store (read-only, beside the server)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute(
                "SELECT count(*) FROM metrics m JOIN runs r ON m.run_uuid = r.run_uuid "
                "JOIN experiments e ON r.experiment_id = e.experiment_id WHERE e.name = ? AND m.key = 'score'",
                (experiment,),
            ).fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0])


def test_a_sweep_survives_a_tracking_outage_and_loses_no_metric(ray_cluster, server, tmp_path, tracking_warnings):
    experiment = "outage-mid-sweep"
    settings = _settings(experiment, ray_cluster.address, server.uri, tmp_path / "sweeps", num_samples=4, tracking_wait=WAIT_S)
    outage = Outage(server, lambda: _metrics_logged(server.db, experiment))
    thread = threading.Thread(target=outage.run, daemon=True)
    thread.start()
    try:
        result = sweep(settings)
    finally:
        outage.done.wait(WAIT_S)
        if not server.running:
            server.start()
    assert not outage.errors, outage.errors
    assert outage.stopped.is_set()  # the server did go away during the sweep
    assert "cannot be reached" in tracking_warnings.text and "reachable again" in tracking_warnings.text

    assert result.tracking_pending == 0
    assert not (result.storage_path / PENDING_FILE).exists()
    client = server.client()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    parents = client.search_runs([experiment_id], filter_string="tags.`archsweep.kind` = 'sweep'")
    assert [p.info.run_id for p in parents] == [result.parent_run_id]
    assert parents[0].info.status == "FINISHED"
    assert len(result.trials) == 4
    _assert_mlflow_has_what_the_trials_reported(client, experiment, result.parent_run_id, result.storage_path)
    assert {t.run_id for t in result.trials} == {c.info.run_id for c in _children(client, experiment, result.parent_run_id)}


def _archsweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ARCHSWEEP), *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=WAIT_S)


def test_server_away_at_the_end_then_archsweep_sync(ray_cluster, server, tmp_path):
    experiment = "outage-at-the-end"
    storage = tmp_path / "sweeps"
    # away from just after the parent run exists (the sweep's state file is written then) to after the sweep
    outage = Outage(server, lambda: any(storage.glob(f"*/{STATE_FILE}")), restart=False)
    thread = threading.Thread(target=outage.run, daemon=True)
    thread.start()
    try:
        result = sweep(_settings(experiment, ray_cluster.address, server.uri, storage, num_samples=2, tracking_wait=1))
        outage.done.wait(WAIT_S)
        assert not outage.errors, outage.errors
        assert outage.stopped.is_set()
    finally:
        outage.done.wait(WAIT_S)
        if not server.running:
            server.start()

    sweep_dir = result.storage_path
    pending = sweep_dir / PENDING_FILE
    assert result.tracking_pending > 0
    assert len(pending.read_text().splitlines()) == result.tracking_pending
    assert json.loads((sweep_dir / STATE_FILE).read_text())["tracking_pending"] is True
    assert result.best_config_path is None and result.report_path is None
    assert len(result.trials) == 2

    synced = _archsweep("sync", str(sweep_dir), cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr[-3000:]
    assert f"wrote {result.tracking_pending} of {result.tracking_pending} saved tracking operations" in synced.stdout
    assert not pending.exists()
    client = server.client()
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    _assert_mlflow_has_what_the_trials_reported(client, experiment, result.parent_run_id, sweep_dir)
    children = _children(client, experiment, result.parent_run_id)
    finished = [c for c in children if c.data.tags["archsweep.status"] == "finished"]
    for status in ("finished", "pruned", "failed"):
        assert parent.data.metrics[f"trials_{status}"] == sum(c.data.tags["archsweep.status"] == status for c in children)
    if finished:  # the sweep's end, done by sync: the best run's tag, best.cfg, the report
        best = max(finished, key=lambda c: c.data.metrics["best_score"])
        assert parent.data.tags["archsweep.best_run"] == best.info.run_id
        assert (sweep_dir / "best.cfg").exists()
    assert "report/report.html" in {a.path for a in client.list_artifacts(result.parent_run_id, "report")}
    assert json.loads((sweep_dir / STATE_FILE).read_text())["tracking_pending"] is False

    again = _archsweep("sync", str(sweep_dir), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to sync" in again.stdout
    assert len(_children(client, experiment, result.parent_run_id)) == 2


def _pending_metrics(storage: Path) -> bool:
    """Whether a sweep under storage has buffered a trial's evaluation in its pending file."""
    for path in storage.glob(f"*/{PENDING_FILE}"):
        try:
            ops = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError):  # being replaced
            continue
        if any(op["op"] == "log_batch" and op["run"].startswith("trial:") and op.get("metrics") for op in ops):
            return True
    return False


def test_a_sweep_starts_while_the_server_is_away(ray_cluster, server, tmp_path, tracking_warnings):
    experiment = "away-at-the-start"
    storage = tmp_path / "sweeps"
    server.stop()
    comeback: Dict[str, object] = {}

    def start_when_trials_reported() -> None:  # the sweep trains meanwhile: it comes back after a trial's evaluation
        deadline = time.monotonic() + WAIT_S
        while not _pending_metrics(storage) and time.monotonic() < deadline:
            time.sleep(0.2)
        comeback["buffered"] = _pending_metrics(storage)
        try:
            server.start()
        except BaseException as err:  # noqa: BLE001 - reported by the test
            comeback["error"] = err

    thread = threading.Thread(target=start_when_trials_reported, daemon=True)
    thread.start()
    try:
        result = sweep(_settings(experiment, ray_cluster.address, server.uri, storage, num_samples=3, tracking_wait=WAIT_S))
    finally:
        thread.join(WAIT_S)
        if not server.running:
            server.start()
    assert "error" not in comeback, comeback
    assert comeback["buffered"]  # a trial reported before MLflow had the sweep's parent run
    assert "cannot be reached" in tracking_warnings.text and "reachable again" in tracking_warnings.text

    assert result.tracking_pending == 0
    assert not (result.storage_path / PENDING_FILE).exists()
    client = server.client()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (parent,) = client.search_runs([experiment_id], filter_string="tags.`archsweep.kind` = 'sweep'")
    assert parent.info.run_id == result.parent_run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.params["num_samples"] == "3"
    assert "space.cfg" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert json.loads((result.storage_path / STATE_FILE).read_text())["parent_run_id"] == parent.info.run_id
    assert len(result.trials) == 3
    _assert_mlflow_has_what_the_trials_reported(client, experiment, parent.info.run_id, result.storage_path)
    if any(t.status == "finished" for t in result.trials):
        assert result.best_config_path is not None and result.best_config_path.is_file()


def _pending_ops(storage: Path) -> List[dict]:
    ops: List[dict] = []
    for path in storage.glob(f"*/{PENDING_FILE}"):
        try:
            ops += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError):  # being replaced
            return []
    return ops


def test_driver_killed_while_the_server_is_away_then_resume(ray_cluster, server, tmp_path):
    """The server is away from the sweep's start; the driver (`archsweep sweep`) is
    SIGKILLed after a trial ended and while another runs; the server comes back;
    `archsweep sweep ... --resume` replays the pending file and finishes the sweep."""
    experiment = "killed-while-away"
    work = tmp_path / "work"
    work.mkdir()
    for name in ("data", "spaces"):
        (work / name).symlink_to(REPO / name)
    storage = tmp_path / "sweeps"
    overrides = {**FAST, "training.max_epochs": 0, "training.max_seconds": 3}  # 3-s trials, run to their end
    args = ["sweep", "spaces/tagger.cfg", "--num-samples", "3", "--max-concurrent", "1", "--address", ray_cluster.address,
            "--tracking-uri", server.uri, "--experiment", experiment, "--storage", str(storage), "--seed", "3",
            "--scheduler", "none", "--tracking-wait", str(WAIT_S), *cli_overrides(overrides)]
    server.stop()
    # Kill once a trial has ended (its end is in the pending file and in Tune's snapshot,
    # which knows every trial the file names) and the next one runs.
    def ended_and_running():
        ops = _pending_ops(storage)
        snapshot = tune_snapshot(storage)
        named = {op["run"].rsplit(":", 1)[1] for op in ops if op["op"] == "create_trial_run"}
        ended = {op["run"].rsplit(":", 1)[1] for op in ops if op["op"] == "set_terminated" and op["run"].startswith("trial:")}
        running = [t for t in named - ended if snapshot.get(t) == "RUNNING"]
        if ended and running and all(snapshot.get(t) == "TERMINATED" for t in ended) and named <= set(snapshot):
            return ops, ended
        return None

    try:
        ops, ended = kill_driver_when(args, work, tmp_path / "first.log", ended_and_running, wait_s=WAIT_S)
    finally:
        if not server.running:
            server.start()
    ray_cluster.wait_for_trials_to_end()
    (sweep_dir,) = storage.iterdir()
    saved = len((sweep_dir / PENDING_FILE).read_text().splitlines())
    assert saved >= len(ops)
    ended_records = {t: r for t, r in _tune_records(sweep_dir).items() if t in ended}
    assert set(ended_records) == ended

    resumed = _archsweep(*args, "--resume", cwd=work)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (sweep_dir / PENDING_FILE).exists()
    client = server.client()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (parent,) = client.search_runs([experiment_id], filter_string="tags.`archsweep.kind` = 'sweep'")
    assert parent.info.status == "FINISHED"
    children = _children(client, experiment, parent.info.run_id)
    by_trial = {c.data.tags["archsweep.trial_id"]: c for c in children}
    assert len(children) == len(by_trial) == 3, sorted(by_trial)
    assert not [c for c in children if c.info.status == "RUNNING" or c.data.tags["archsweep.status"] == "running"]
    assert {c.data.tags["archsweep.status"] for c in children} == {"finished"}  # no early stopping here
    # the trials that ended before the kill keep what they reported (replayed from the pending file), and ran once
    for trial_id, results in ended_records.items():
        assert _history(client, by_trial[trial_id].info.run_id) == [(r["step"], r["score"]) for r in results if not r.get("training_finished")]
    best = Path(resumed.stdout.split("best config: ", 1)[1].splitlines()[0])
    assert best.is_file() and best.parent == sweep_dir
