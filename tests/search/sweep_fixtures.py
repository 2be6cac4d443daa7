"""Real services for the sweep tests, started once per test session: a local Ray
cluster (`ray start --head` on 127.0.0.1), an `mlflow server` with a SQLite
store, and one finished sweep that several test modules inspect.

Nothing here is mocked. Every process a fixture starts is stopped in its
teardown by PID (the Ray cluster: every process of the `ray start` process
group and their descendants, collected *before* they are stopped, so that the
Ray agents that raylet orphans are found too). `ray stop --force` is not used:
it stops every Ray process on the machine, including other sessions' clusters.

Ray, MLflow and the search package are imported inside the fixtures, so
importing this module (conftest.py does) costs the other tests nothing.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, TypeVar

import psutil
import pytest
from procs import alive, kill_pids, processes, stop_pids, stop_process_group, with_descendants
from search_testing import PATHS, REPO, VECTORS

BIN = Path(sys.executable).parent
RAY = BIN / "ray"
MLFLOW = BIN / "mlflow"
ARCHSWEEP = BIN / "archsweep"
SPACE = REPO / "spaces" / "tagger.cfg"

# Keeps a trial around a second of training on 2 cores: few evaluations (every
# 10 steps, 2 epochs of 200 sentences), narrow and shallow CNNs. The widths and
# depths stay searched (the space file's values replaced, not removed).
FAST: Dict[str, Any] = {
    **PATHS,
    "paths.vectors": str(VECTORS),
    "training.max_epochs": 2,
    "training.eval_frequency": 10,
    "corpora.train.limit": 200,
    "corpora.dev.limit": 100,
    "components.tagger.model.tok2vec.width.values": [32, 64],
    "components.tagger.model.tok2vec.width.default": 32,
    "components.tagger.model.tok2vec.depth.high": 3,
    "components.tagger.model.tok2vec.depth.default": 2,
    "components.tagger.model.tok2vec.embed_size.high": 4000,
}

# The thirteen dimensions of spaces/tagger.cfg (FAST changes ranges, not names).
TAGGER_DIMENSIONS = [
    "components.tagger.model.tok2vec.width",
    "components.tagger.model.tok2vec.depth",
    "components.tagger.model.tok2vec.embed_size",
    "components.tagger.model.tok2vec.window_size",
    "components.tagger.model.tok2vec.maxout_pieces",
    "components.tagger.model.tok2vec.subword_features",
    "components.tagger.model.tok2vec.dropout",
    "components.tagger.model.tok2vec.pretrained_vectors",
    "training.dropout",
    "training.batcher.size.start",
    "training.batcher.size.stop",
    "training.optimizer.use_averages",
    "training.optimizer.learn_rate",
]


def cli_overrides(overrides: Dict[str, Any]) -> List[str]:
    """`--section.key value` pairs for the CLI (values as JSON, as parse_overrides reads them)."""
    args: List[str] = []
    for key, value in overrides.items():
        args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return args


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    env.update(extra)
    return env


Ready = TypeVar("Ready")


def kill_driver_when(args: List[str], cwd: Path, log: Path, ready: Callable[[], Optional[Ready]], wait_s: float,
                     poll_s: float = 0.3) -> Ready:
    """Start `archsweep *args` in `cwd` in its own process group (output to `log`), call
    `ready()` every `poll_s` seconds until it returns something true, then SIGKILL the
    whole group and return that. Fails if the driver ends first or `wait_s` passes."""
    with open(log, "wb") as out:
        driver = subprocess.Popen([str(ARCHSWEEP), *args], cwd=cwd, env=subprocess_env(), stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            assert driver.poll() is None, f"the sweep ended before it could be killed:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready to be killed within {wait_s} s:\n{log.read_text()[-3000:]}"
            found = ready()
            if found:
                return found
            time.sleep(poll_s)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)


# ---------------------------------------------------------------- Ray


def tune_snapshot(storage: Path) -> Dict[str, str]:
    """Trial id -> status in Tune's latest experiment snapshot under `storage` ({} while there is none)."""
    paths = sorted(storage.glob("*/experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not paths:
        return {}
    try:
        state = json.loads(paths[-1].read_text())
    except (OSError, json.JSONDecodeError):  # being rewritten
        return {}
    return {json.loads(trial)["trial_id"]: json.loads(trial)["status"] for trial, _ in state["trial_data"]}


@dataclass
class RayCluster:
    address: str
    port: int
    pgid: int  # the `ray start` process group: gcs_server, raylet, monitors
    temp_dir: Path

    def own_pids(self) -> Set[int]:
        """Every live process of this cluster: its process group and their
        descendants (workers are raylet's children in their own groups)."""
        table = processes()
        return with_descendants([p.pid for p in table.values() if p.pgid == self.pgid], table)

    def raylet_pid(self) -> int:
        table = processes()
        return next(p.pid for p in table.values() if p.pgid == self.pgid and "/raylet/raylet " in p.cmdline)

    def workers(self, prefix: str = "ray::ImplicitFunc") -> List[int]:
        """Pids of the raylet's worker processes whose title starts with `prefix`."""
        table = processes()
        raylet = self.raylet_pid()
        return [p.pid for p in table.values() if p.ppid == raylet and p.cmdline.startswith(prefix) and p.state != psutil.STATUS_ZOMBIE]

    def wait_for_trials_to_end(self, wait_s: float = 30) -> None:
        """A killed driver's trial actors end with its job; stop any still there after `wait_s`."""
        deadline = time.monotonic() + wait_s
        while self.workers("ray::ImplicitFunc") and time.monotonic() < deadline:
            time.sleep(0.5)
        stop_pids(self.workers("ray::ImplicitFunc"), grace=5)


def start_ray_node(args: List[str], temp_dir: Path, log: Path, env: Optional[Dict[str, str]] = None) -> int:
    """`ray start ARGS` on 127.0.0.1 with this session's settings, in its own process
    group (its pgid identifies the node's processes); the starter's pid. Fails the
    test with the log when it does not start within 180 s."""
    with open(log, "ab") as out:
        starter = subprocess.Popen(
            [str(RAY), "start", *args, "--node-ip-address=127.0.0.1", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
            stdout=out, stderr=subprocess.STDOUT, env=subprocess_env(**(env or {})), start_new_session=True,
        )
    try:
        rc = starter.wait(timeout=180)
    except subprocess.TimeoutExpired:
        kill_pids(with_descendants([starter.pid]))
        pytest.fail(f"ray start {' '.join(args)} did not return within 180 s:\n{log.read_text()[-3000:]}")
    if rc != 0:
        pytest.fail(f"ray start {' '.join(args)} failed (rc {rc}):\n{log.read_text()[-3000:]}")
    return starter.pid


def stop_ray_nodes(nodes: Iterable[RayCluster]) -> None:
    """SIGKILL every process of these nodes, as `ray stop --force` does (gcs_server
    ignores SIGTERM for many seconds) but only theirs: the whole tree is collected
    first (once raylet is gone its agents and workers are reparented), then what was
    orphaned earlier (a killed raylet's agents) by the nodes' temp dirs; the temp dirs go."""
    nodes = list(nodes)
    pids: Set[int] = set()
    for node in nodes:
        if node.pgid:  # 0 when its `ray start` failed: its processes are found by the temp dir
            pids |= node.own_pids()
    kill_pids(pids)
    kill_pids(p for p in with_descendants(pids) if alive(p))
    temp_dirs = {str(node.temp_dir) for node in nodes}
    kill_pids(p.pid for p in processes().values() if any(d in p.cmdline for d in temp_dirs))
    for temp_dir in temp_dirs:
        shutil.rmtree(temp_dir, ignore_errors=True)


@contextmanager
def ray_head(num_cpus: int, object_store_memory: int = 200_000_000, env: Optional[Dict[str, str]] = None) -> Iterator[RayCluster]:
    """A one-node Ray cluster (`ray start --head` on 127.0.0.1) in a short, private
    temp dir (no clash with another cluster's /tmp/ray/session_latest, and unix
    socket paths stay under their 107-character limit), stopped at the end.
    env: settings for its processes (e.g. Ray's memory monitor)."""
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="asray", dir="/tmp"))
    args = [
        "--head", f"--port={port}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
        f"--object-store-memory={object_store_memory}", f"--dashboard-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
    ]
    cluster = RayCluster(f"127.0.0.1:{port}", port, 0, temp_dir)
    try:
        cluster.pgid = start_ray_node(args, temp_dir, temp_dir / "ray-start.log", env)
        yield cluster
    finally:
        stop_ray_nodes([cluster])


@contextmanager
def ray_auth_disabled() -> Iterator[None]:
    """RAY_AUTH_MODE=disabled (drivers and CLI subprocesses inherit it) and one BLAS
    thread, for a cluster's lifetime; the previous values restored after."""
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def ray_cluster():
    """A local single-node Ray cluster (two CPUs) started with the `ray start` CLI,
    with token auth disabled for the whole session."""
    with ray_auth_disabled(), ray_head(num_cpus=2) as cluster:
        yield cluster


# ---------------------------------------------------------------- MLflow


@dataclass
class MlflowServer:
    uri: str
    root: Path
    proc: subprocess.Popen

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)


def wait_for_mlflow(uri: str, proc: subprocess.Popen, log: Path, wait_s: float = 180) -> None:
    """Until the server started as `proc` answers {uri}/health; fail with its log if it
    exits or stays silent for `wait_s` seconds (its workers import mlflow on start: well
    under 60 s on a quiet 2-core box, minutes when it is busy)."""
    deadline = time.monotonic() + wait_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited (rc {proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"mlflow server did not answer {uri}/health within {wait_s:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts
    (without its job runner: MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = root / "server.log"
    args = [
        str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=subprocess_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_mlflow(uri, proc, log)
        yield MlflowServer(uri, root, proc)
    finally:
        stop_process_group(proc)


# ---------------------------------------------------------------- one finished sweep


@dataclass
class FinishedSweep:
    settings: Any  # search.sweep.SweepSettings
    result: Any  # search.sweep.SweepResult
    server: MlflowServer
    progress: List[str] = field(default_factory=list)
    live_table: List[str] = field(default_factory=list)  # search.progress's table, line by line


@pytest.fixture(scope="session")
def finished_sweep(ray_cluster, mlflow_server, tmp_path_factory) -> FinishedSweep:
    """A 4-trial TPE + ASHA sweep of spaces/tagger.cfg (2 at a time), tracked
    by the MLflow server, through the Python API."""
    from search.sweep import SweepSettings, sweep

    settings = SweepSettings(
        space_path=str(SPACE),
        num_samples=4,
        max_concurrent=2,
        address=ray_cluster.address,
        tracking_uri=mlflow_server.uri,
        experiment="e2e-tagger",
        storage=str(tmp_path_factory.mktemp("sweeps")),
        seed=0,
        search="tpe",
        scheduler="asha",
        grace_period=1,
        overrides=dict(FAST),
    )
    progress: List[str] = []
    live_table: List[str] = []
    result = sweep(settings, progress=progress.append, live_table=live_table.append)
    return FinishedSweep(settings, result, mlflow_server, progress, live_table)


# ---------------------------------------------------------------- one finished sweep through the CLI


@dataclass
class CliSweep:
    workdir: Path  # holds data/ and spaces/ (links), mlflow.db, mlartifacts/, runs/sweeps/
    stdout: str
    stderr: str
    tracking_uri: str  # the default store: sqlite ./mlflow.db


@pytest.fixture(scope="session")
def cli_sweep(ray_cluster, tmp_path_factory) -> CliSweep:
    """`archsweep sweep spaces/tagger.cfg` with 2 trials (random search, no early
    stopping, seed 1) on the session's Ray, MLflow in the default SQLite store,
    its output captured (the live progress table, the final summary)."""
    work = tmp_path_factory.mktemp("cli-sweep")
    for name in ("data", "spaces"):
        (work / name).symlink_to(REPO / name)
    overrides = {k: v for k, v in FAST.items() if not k.startswith("paths.")}  # the space's relative paths
    args = [str(ARCHSWEEP), "sweep", "spaces/tagger.cfg", "--num-samples", "2", "--address", ray_cluster.address,
            "--scheduler", "none", "--search", "random", "--seed", "1", *cli_overrides(overrides)]
    proc = subprocess.Popen(args, cwd=work, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"archsweep sweep did not end within 300 s:\n{err.decode()[-3000:]}")
    if proc.returncode != 0:
        pytest.fail(f"archsweep sweep failed (rc {proc.returncode}):\n{err.decode()[-3000:]}")
    return CliSweep(work, out.decode(), err.decode(), f"sqlite:///{work / 'mlflow.db'}")
