"""Faults during a sweep, on real processes: a multi-node Ray cluster on one machine
(a head and two worker nodes, each its own `ray start` with one CPU) losing a worker
node mid-sweep: the trials it ran are run again elsewhere (FailureConfig
max_failures), the sweep completes, and MLflow shows every trial once with its true
final status; and a trial whose losses go NaN, or whose model does not fit in memory,
failing alone, with its reason."""

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import List

import pytest
from confection import Config
from procs import alive, kill_pids
from search_testing import REPO
from sweep_fixtures import (
    FAST,
    SPACE,
    RayCluster,
    free_port,
    ray_auth_disabled,
    ray_head,
    start_ray_node,
    stop_ray_nodes,
)

from search.space import DIST_KEY
from search.sweep import SweepSettings, sweep


@pytest.fixture(scope="module")
def three_nodes():
    """Head + two workers, one CPU each; stopped (every process of every node) at the end."""
    temp_dir = Path(tempfile.mkdtemp(prefix="asray3", dir="/tmp"))
    log = temp_dir / "ray-start.log"
    port = free_port()
    one_cpu = ["--num-cpus=1", "--object-store-memory=100000000", f"--dashboard-agent-listen-port={free_port()}"]
    nodes: List[RayCluster] = []
    with ray_auth_disabled():
        try:
            head = start_ray_node(["--head", f"--port={port}", "--include-dashboard=false", *one_cpu], temp_dir, log)
            nodes.append(RayCluster(f"127.0.0.1:{port}", port, head, temp_dir))
            for _ in range(2):
                one_cpu[-1] = f"--dashboard-agent-listen-port={free_port()}"
                pid = start_ray_node([f"--address=127.0.0.1:{port}", *one_cpu], temp_dir, log)
                nodes.append(RayCluster(f"127.0.0.1:{port}", port, pid, temp_dir))
            yield nodes
        finally:
            stop_ray_nodes(nodes or [RayCluster("", port, 0, temp_dir)])


def test_a_node_dies_mid_sweep_and_its_trials_run_again(three_nodes, mlflow_server, tmp_path, monkeypatch):
    head, victim, survivor = three_nodes
    # every node of this cluster sees this machine's disk: declare the storage and data shared (as NFS would be)
    monkeypatch.setenv("ARCHSWEEP_SHARED_DIRS", os.pathsep.join([str(tmp_path), str(REPO)]))
    overrides = {**FAST, "training.max_epochs": 20}  # long enough trials for the kill to land mid-trial (6 epochs ended too soon once training got faster)
    settings = SweepSettings(
        space_path=str(SPACE), num_samples=5, max_concurrent=3, address=head.address,
        tracking_uri=mlflow_server.uri, experiment="node-loss", storage=str(tmp_path / "sweeps"),
        seed=3, search="random", scheduler="none", max_failures=2, overrides=overrides,
    )
    progress: List[str] = []
    outcome = {}

    def run_sweep() -> None:
        try:
            outcome["result"] = sweep(settings, progress=lambda line: progress.append(f"{time.monotonic():.1f} {line}"))
        except BaseException as err:  # re-raised in the test thread
            outcome["error"] = err

    driver = threading.Thread(target=run_sweep, daemon=True)
    driver.start()
    deadline = time.monotonic() + 300
    while not victim.workers() and time.monotonic() < deadline and driver.is_alive():
        time.sleep(0.5)
    if "error" in outcome:
        raise outcome["error"]
    assert victim.workers(), f"no trial started on the worker node within 300 s; progress: {progress}"
    time.sleep(2.0)  # the trial is training now
    killed_at = time.monotonic()
    raylet = victim.raylet_pid()
    kill_pids([raylet, *victim.workers()])
    driver.join(timeout=900)
    assert not driver.is_alive(), f"the sweep did not finish within 900 s; progress: {progress}"
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]

    statuses = [t.status for t in result.trials]
    assert len(result.trials) == 5 and statuses.count("failed") == 0, [(t.status, t.error) for t in result.trials]
    retried = [line for line in progress if "running it again" in line]
    assert retried, f"no trial was run again after the node was killed; progress: {progress}"
    recovery = float(retried[0].split()[0]) - killed_at
    print(f"node killed -> Tune ran its trial again after {recovery:.1f} s")

    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("node-loss")
    children = client.search_runs([experiment.experiment_id], filter_string="tags.`archsweep.kind` = 'trial'", max_results=100)
    assert len(children) == 5  # one run per trial: the retried trial kept its run
    assert sorted(c.data.tags["archsweep.trial_id"] for c in children) == sorted(t.trial_id for t in result.trials)
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["archsweep.status"] for c in children} == {"finished"}
    retried_runs = [c for c in children if "retries" in c.data.metrics]
    assert retried_runs, "the retried trial's run does not record its retry"
    assert survivor.raylet_pid() and alive(survivor.raylet_pid())


def _nan_space(path: Path) -> Path:
    """spaces/tagger.cfg whose learning rate is 1e30 (the weights blow up, the loss
    goes NaN: search.training stops the trial) or 0.001."""
    config = Config().from_disk(SPACE, interpolate=False)
    config["training"]["optimizer"]["learn_rate"] = {DIST_KEY: "choice.v1", "values": [1e30, 0.001], "default": 0.001}
    path.write_text(config.to_str())
    return path


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_trial_with_nan_losses_fails_alone_with_its_reason(ray_cluster, mlflow_server, tmp_path):
    settings = SweepSettings(
        space_path=str(_nan_space(tmp_path / "nan.cfg")), num_samples=4, max_concurrent=2, address=ray_cluster.address,
        tracking_uri=mlflow_server.uri, experiment="nan-trials", storage=str(tmp_path / "sweeps"),
        seed=1, search="random", scheduler="none", max_failures=1, overrides=dict(FAST),
    )
    result = sweep(settings)  # returns normally
    client = mlflow_server.client()
    lrs = {t.trial_id: float(t.values["training.optimizer.learn_rate"]) for t in result.trials}
    assert sorted(set(lrs.values())) == [0.001, 1e30], lrs  # both kinds of trial ran
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        if lrs[trial.trial_id] == 1e30:
            assert trial.status == "failed" and run.info.status == "FAILED"
            assert "had a non-finite loss" in run.data.tags["archsweep.error"]
            assert run.data.metrics.get("retries") == 1  # max_failures: run once more, then failed
        else:
            assert trial.status == "finished" and run.info.status == "FINISHED", (trial.status, trial.error)


def _huge_embedding_space(path: Path) -> Path:
    """spaces/tagger.cfg whose embedding table has 2,000 or 10^11 rows per feature: the
    second needs terabytes, so building the trial's model runs out of memory."""
    config = Config().from_disk(SPACE, interpolate=False)
    tok2vec = config["components"]["tagger"]["model"]["tok2vec"]
    tok2vec["embed_size"] = {DIST_KEY: "choice.v1", "values": [2000, 10**11], "default": 2000}
    path.write_text(config.to_str())
    return path


def test_a_trial_out_of_memory_fails_alone_with_its_reason(ray_cluster, mlflow_server, tmp_path):
    settings = SweepSettings(
        space_path=str(_huge_embedding_space(tmp_path / "huge.cfg")), num_samples=4, max_concurrent=2,
        address=ray_cluster.address, tracking_uri=mlflow_server.uri, experiment="oom-trials",
        storage=str(tmp_path / "sweeps"), seed=1, search="random", scheduler="none", max_failures=0,
        overrides={k: v for k, v in FAST.items() if k != "components.tagger.model.tok2vec.embed_size.high"},
    )
    result = sweep(settings)  # returns normally
    client = mlflow_server.client()
    sizes = {t.trial_id: int(t.values["components.tagger.model.tok2vec.embed_size"]) for t in result.trials}
    assert sorted(set(sizes.values())) == [2000, 10**11], sizes  # both kinds of trial ran
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        if sizes[trial.trial_id] == 10**11:
            assert trial.status == "failed" and run.info.status == "FAILED"
            assert "MemoryError" in run.data.tags["archsweep.error"] or "Unable to allocate" in run.data.tags["archsweep.error"]
        else:
            assert trial.status == "finished" and run.info.status == "FINISHED", (trial.status, trial.error)


# ---------------------------------------------------------------- a worker killed for memory, from outside

GIB = 2**30
OOM_HEADROOM = 5 * GIB  # Ray's monitor kills once the machine uses this much more memory than at the test's start
HUGE_ROWS = 46_875_000  # one 32-wide table: thinc initialises it through a 12 GB float64 array


def _memory() -> tuple:
    """(total, used) bytes as Ray's memory monitor counts them (total - MemAvailable)."""
    info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()}
    return info["MemTotal"], info["MemTotal"] - info["MemAvailable"]


@pytest.fixture(scope="module")
def memory_watched_ray():
    """A one-CPU Ray node whose memory monitor (RAY_memory_usage_threshold, checked every
    100 ms) kills a worker once the machine's used memory exceeds what it is now plus
    OOM_HEADROOM: how a node of a real cluster meets a trial that does not fit."""
    total, used = _memory()
    if total - used < OOM_HEADROOM + 8 * GIB:
        pytest.skip(f"needs {OOM_HEADROOM / GIB + 8:.0f} GiB of available memory, {(total - used) / GIB:.1f} GiB is")
    env = {"RAY_memory_usage_threshold": f"{(used + OOM_HEADROOM) / total:.4f}", "RAY_memory_monitor_refresh_ms": "100"}
    with ray_auth_disabled(), ray_head(num_cpus=1, env=env) as cluster:
        yield cluster


def _oom_space(path: Path) -> Path:
    """spaces/tagger.cfg with one 32-wide NORM table of 2,000 or HUGE_ROWS rows (no subword tables, no
    static vectors), and nothing enqueued: after the defaults, every trial draws its table's size."""
    config = Config().from_disk(SPACE, interpolate=False)
    tok2vec = config["components"]["tagger"]["model"]["tok2vec"]
    tok2vec.update(width=32, subword_features=False, pretrained_vectors=None)
    config["training"]["optimizer"]["use_averages"] = False
    tok2vec["embed_size"] = {DIST_KEY: "choice.v1", "values": [2000, HUGE_ROWS], "default": 2000}
    path.write_text(config.to_str())
    return path


def test_a_worker_killed_by_rays_memory_monitor_fails_its_trial_alone(memory_watched_ray, mlflow_server, tmp_path):
    overrides = {k: v for k, v in FAST.items() if not k.startswith("components.tagger.model.tok2vec.")}
    settings = SweepSettings(
        space_path=str(_oom_space(tmp_path / "oom.cfg")), num_samples=3, max_concurrent=1,
        address=memory_watched_ray.address, tracking_uri=mlflow_server.uri, experiment="oom-killed",
        storage=str(tmp_path / "sweeps"), seed=3, search="random", scheduler="none", max_failures=1, overrides=overrides,
    )
    progress: List[str] = []
    result = sweep(settings, progress=progress.append)  # returns normally
    client = mlflow_server.client()
    sizes = {t.trial_id: int(t.values["components.tagger.model.tok2vec.embed_size"]) for t in result.trials}
    assert sorted(set(sizes.values())) == [2000, HUGE_ROWS], sizes  # both kinds of trial ran
    for trial in result.trials:
        run = client.get_run(trial.run_id)
        if sizes[trial.trial_id] == HUGE_ROWS:
            assert trial.status == "failed" and run.info.status == "FAILED"
            error = run.data.tags["archsweep.error"]
            assert error.startswith("out of memory: Ray's memory monitor killed the trial's worker"), error[:500]
            error_txt = Path(client.download_artifacts(trial.run_id, "error.txt", str(tmp_path))).read_text()
            assert error_txt.startswith(error.split("\n", 1)[0]) and "ray.exceptions.OutOfMemoryError" in error_txt
            assert run.data.metrics.get("retries") == 1  # run again once (max_failures), killed again
            assert trial.error.startswith("out of memory")
        else:
            assert trial.status == "finished" and run.info.status == "FINISHED", (trial.status, trial.error)
    failed_lines = [line for line in progress if ": failed, best score" in line]
    assert failed_lines and all("out of memory: Ray's memory monitor" in line for line in failed_lines), progress
