"""Cluster benchmarks, each writing its section of bench/RESULTS.md.

    .venv/bin/python bench/cluster.py scaling    # the same 16-trial sweep on 1, 2 and 3 local Ray nodes
    .venv/bin/python bench/cluster.py recovery   # a worker node killed mid-sweep: time until its trial runs again

Nodes are separate `ray start` processes on this machine (a head and workers, one
CPU each, token auth off), tracked by a real `mlflow server` on 127.0.0.1; the
sweep's storage is declared shared (ARCHSWEEP_SHARED_DIRS), as NFS would be.

scaling: spaces/tagger.cfg on the bundled sample, 1 epoch per trial, random search,
no early stopping, K nodes run K trials at a time. Reports wall time, trials per
hour, speed-up over one node, and per-trial overhead = (wall x K - sum of the
trials' own time) / trials. On a 2-core machine three one-CPU nodes oversubscribe
the cores, which the figures show.

recovery: 3 nodes, 6 trials; once a trial trains on a worker node, that node's
raylet and workers are SIGKILLed. Reports the time from the kill until Tune
declares the trial failed and queues it again (max_failures), and until the
retried trial's first new result reaches MLflow.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "search"))  # the process helpers the tests use
from procs import kill_pids, processes  # noqa: E402
from results import machine, today, write_section  # noqa: E402

BIN = Path(sys.executable).parent
SAMPLE = {
    "paths.train": str(ROOT / "data/ud_english_ewt/en_ewt-ud-train.sample.conllu"),
    "paths.dev": str(ROOT / "data/ud_english_ewt/en_ewt-ud-dev.sample.conllu"),
}
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A head and `workers` worker nodes, each `ray start --num-cpus=1`, in their own
    process groups; `stop()` kills every process of every node."""

    def __init__(self, workers: int, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.port = _port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: List[int] = []
        self._start(["--head", f"--port={self.port}", "--include-dashboard=false"])
        for _ in range(workers):
            self._start([f"--address={self.address}"])

    def _start(self, args: List[str]) -> None:
        starter = subprocess.Popen(
            [str(BIN / "ray"), "start", *args, "--node-ip-address=127.0.0.1", "--num-cpus=1",
             "--object-store-memory=100000000", "--disable-usage-stats", f"--temp-dir={self.temp_dir}",
             f"--dashboard-agent-listen-port={_port()}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=ENV, start_new_session=True,
        )
        if starter.wait(timeout=180) != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed")
        self.groups.append(starter.pid)

    def pids(self, group: int) -> List[int]:
        return [p.pid for p in processes().values() if p.pgid == group]

    def raylet(self, group: int) -> int:
        return next(p.pid for p in processes().values() if p.pgid == group and "/raylet/raylet " in p.cmdline)

    def trial_workers(self, group: int) -> List[int]:
        raylet = self.raylet(group)
        return [p.pid for p in processes().values() if p.ppid == raylet and p.cmdline.startswith("ray::ImplicitFunc")]

    def stop(self) -> None:
        kill_pids(p.pid for p in processes().values() if str(self.temp_dir) in p.cmdline or p.pgid in self.groups)


class MlflowServer:
    def __init__(self, root: Path) -> None:
        port = _port()
        self.uri = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env={**ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("mlflow server did not start")
                time.sleep(0.5)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


def _sweep(cluster: LocalCluster, uri: str, storage: Path, experiment: str, trials: int, concurrent: int,
           overrides: Dict, progress=None):
    from search.sweep import SweepSettings, sweep

    os.environ.update({"RAY_AUTH_MODE": "disabled", "ARCHSWEEP_SHARED_DIRS": os.pathsep.join([str(storage), str(ROOT)])})
    settings = SweepSettings(
        space_path=str(ROOT / "spaces" / "tagger.cfg"), num_samples=trials, max_concurrent=concurrent,
        address=cluster.address, tracking_uri=uri, experiment=experiment, storage=str(storage / "sweeps"),
        search="random", scheduler="none", max_failures=2, overrides={**SAMPLE, **overrides},
    )
    return sweep(settings, progress=progress)


def scaling(args) -> None:
    from search.tracking.mlflow import SweepTracking

    rows = []
    with tempfile.TemporaryDirectory(prefix="asclu", dir="/tmp") as tmp:
        server = MlflowServer(Path(tmp))
        try:
            for nodes in (1, 2, 3):
                cluster = LocalCluster(nodes - 1, Path(tmp) / f"ray{nodes}")
                try:
                    start = time.perf_counter()
                    result = _sweep(cluster, server.uri, Path(tmp), f"scaling-{nodes}", args.trials, nodes, {"training.max_epochs": 1})
                    wall = time.perf_counter() - start
                finally:
                    cluster.stop()
                runs = SweepTracking(server.uri, f"scaling-{nodes}").trials(result.parent_run_id)
                own = sum(r.data.metrics.get("trial_seconds", 0.0) for r in runs)
                rows.append((nodes, wall, own, sum(t.status == "finished" for t in result.trials)))
                print(f"{nodes} node(s): {wall:.1f} s wall, {own:.1f} s in trials", flush=True)
        finally:
            server.stop()
    base = rows[0][1]
    lines = [
        "## Cluster: the same sweep on 1, 2 and 3 Ray nodes",
        "",
        f"- Command: `.venv/bin/python bench/cluster.py scaling --trials {args.trials}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- {args.trials} trials of spaces/tagger.cfg (bundled sample, 1 epoch each, random search, no early stopping);",
        "  K nodes = a head and K-1 workers, separate `ray start` processes with one CPU each, K trials at a time;",
        "  tracking: `mlflow server` on 127.0.0.1. Ray start-up is not counted.",
        "",
        "| nodes | finished | sweep wall | trials/hour | speed-up | sum of trials' own time | overhead per trial |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for nodes, wall, own, finished in rows:
        overhead = (wall * nodes - own) / args.trials
        lines.append(f"| {nodes} | {finished} | {wall:.1f} s | {args.trials * 3600 / wall:,.0f} | {base / wall:.2f}x | {own:.1f} s | {overhead:.2f} s |")
    lines += [
        "",
        f"This machine has {os.cpu_count()} cores: beyond that, one-CPU nodes share cores and the trials slow down",
        "(their own time grows), which is what a real cluster of one-CPU machines would not show.",
    ]
    write_section("cluster-scaling", lines)
    print("\n".join(lines))


def recovery(args) -> None:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="asrec", dir="/tmp") as tmp:
        server = MlflowServer(Path(tmp))
        cluster = LocalCluster(2, Path(tmp) / "ray")
        victim = cluster.groups[1]
        events: List[Tuple[float, str]] = []
        outcome = {}

        def run() -> None:
            try:
                outcome["result"] = _sweep(cluster, server.uri, Path(tmp), "recovery", 6, 3, {"training.max_epochs": 6},
                                           progress=lambda line: events.append((time.time(), line)))
            except Exception as err:
                outcome["error"] = err

        try:
            driver = threading.Thread(target=run, daemon=True)
            driver.start()
            deadline = time.monotonic() + 300
            while not cluster.trial_workers(victim) and time.monotonic() < deadline and driver.is_alive():
                time.sleep(0.2)
            if not cluster.trial_workers(victim):
                raise RuntimeError(f"no trial reached the worker node: {outcome.get('error')}")
            time.sleep(2.0)
            killed = time.time()
            for pid in [cluster.raylet(victim), *cluster.trial_workers(victim)]:
                os.kill(pid, signal.SIGKILL)
            driver.join(timeout=900)
            if "error" in outcome:
                raise outcome["error"]
            result = outcome["result"]
            requeued = next(t for t, line in events if "running it again" in line and t >= killed)
            client = MlflowClient(server.uri)
            retried = [t for t in result.trials if "retries" in client.get_run(t.run_id).data.metrics]
            first_new = min(
                m.timestamp / 1000 for t in retried for m in client.get_metric_history(t.run_id, "score") if m.timestamp / 1000 > requeued
            )
            finished = sum(t.status == "finished" for t in result.trials)
        finally:
            cluster.stop()
            server.stop()
    lines = [
        "## Cluster: recovery from a lost node",
        "",
        "- Command: `.venv/bin/python bench/cluster.py recovery`",
        f"- Date: {today()}; machine: {machine()}",
        "- 3 local Ray nodes (one CPU each), 6 trials of spaces/tagger.cfg (6 epochs of the bundled sample each), 3 at a",
        "  time, max_failures 2; a worker node's raylet and trial workers SIGKILLed 2 s after a trial started there.",
        "",
        "| event | seconds after the kill |",
        "|---|---:|",
        f"| Tune declares the trial failed and queues it again | {requeued - killed:.1f} |",
        f"| the retried trial's first result reaches MLflow | {first_new - killed:.1f} |",
        "",
        f"The sweep finished with {finished} of 6 trials finished and {len(retried)} trial(s) retried, one MLflow run each.",
    ]
    write_section("cluster-recovery", lines)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=("scaling", "recovery"))
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    if args.which == "scaling":
        scaling(args)
    else:
        recovery(args)


if __name__ == "__main__":
    main()
