"""GPU benchmark: one command, under 8 minutes on one H100, that checks and measures
archsweep on a GPU and writes its figures to the "gpu" section of bench/RESULTS.md.

    .venv/bin/python bench/gpu.py                  # on a machine with a CUDA GPU and CuPy (--gpu-id 0)
    .venv/bin/python bench/gpu.py --check-on-cpu   # the same logic on the CPU at tiny sizes (nothing written)

Parts (--parts tests,configs,schedule,sweep; each bounded in time, every child
process bounded by a timeout and killed with its process group past it):

  tests     the GPU-only tests (those that skip without a CUDA GPU; selected by
            bench/gpu_tests.py), with their pass/fail/skip counts.
  configs   every configs/*.cfg for --steps steps at the batcher's largest batch
            size, on the GPU and on the CPU (same seed, same batches): training
            words/s, peak memory (the GPU's allocator pool; the CPU process's
            peak RSS) and the dev score after the same steps, which must agree
            within --score-tolerance (else a MISMATCH flag and exit code 3).
  schedule  configs/tagger.cfg with its own schedule (compounding 100-1000-word
            batches, learning rate 0.001) for --schedule-epochs epochs (5, the
            config's) against the GPU schedule (GPU_SCHEDULE: fixed 8000-word
            batches, learning rate 0.003, evaluation every 200 steps) for 4 times
            as many: dev UPOS, the epochs the GPU schedule needs to reach the
            default's final score, words/s; plus words/s at 32000-word batches.
  sweep     a real sweep of spaces/tagger.cfg (random search, no early stopping,
            --sweep-trials trials) at 1, 2, 4 and 8 trials per GPU
            (--gpus-per-trial 1, 0.5, 0.25, 0.125 with as many running at once):
            trials per hour and total training words/s.

Without a usable GPU (no CuPy, no device) it prints one line and exits with code 1.
--check-on-cpu runs every part on the CPU (gpu_id -1 for the "GPU" side too; the
sweep without GPU resources) at tiny sizes, to verify the script on a machine
without a GPU; it prints the section instead of writing it (unless --write).
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(ROOT))
from results import machine, today, write_section  # noqa: E402

PY = sys.executable
SECTION = "gpu"
TRAIN = ROOT / "data" / "ud_english_ewt" / "en_ewt-ud-train.sample.conllu"
DEV = ROOT / "data" / "ud_english_ewt" / "en_ewt-ud-dev.sample.conllu"
# The GPU training schedule (docs/gpu.md, "A GPU training schedule"): large fixed batches, evaluation less often,
# the learning rate raised for the fewer, larger updates.
GPU_SCHEDULE: Dict[str, Any] = {
    "training.batcher.size": 8000,
    "training.eval_frequency": 200,
    "training.optimizer.learn_rate": 0.003,
}
SCHEDULE_EPOCHS_FACTOR = 4  # the GPU schedule makes fewer, larger updates per epoch: it gets 4x the epochs
PACKINGS = (1, 2, 4, 8)
PARTS = ("tests", "configs", "schedule", "sweep")
# The whole run ends by then (seconds after the start, --deadline): every child's timeout is cut to what is
# left, and what cannot start any more is reported as not run. Leaves room under 8 minutes for start-up.
DEADLINE_S = 420.0
_deadline = float("inf")


def time_left() -> float:
    return _deadline - time.perf_counter()


@dataclass
class Sizes:
    steps: int  # configs: training steps per config and device
    eval_every: int  # configs: steps between evaluations (words/s between the first and the last)
    child_timeout: float  # any one training child
    configs_budget: float  # the whole configs part: configs not started by then are reported as not run
    schedule_epochs: int
    schedule_timeout: float
    sweep_trials: int
    sweep_epochs: int
    sweep_timeout: float  # one sweep (one packing)
    packings: Tuple[int, ...]
    tests_timeout: float


GPU_SIZES = Sizes(steps=40, eval_every=20, child_timeout=90, configs_budget=150, schedule_epochs=5,
                  schedule_timeout=60, sweep_trials=8, sweep_epochs=1, sweep_timeout=60, packings=PACKINGS,
                  tests_timeout=90)
CHECK_SIZES = Sizes(steps=4, eval_every=2, child_timeout=180, configs_budget=900, schedule_epochs=1,
                    schedule_timeout=180, sweep_trials=2, sweep_epochs=1, sweep_timeout=240, packings=(1, 2),
                    tests_timeout=300)


# ------------------------------------------------------------------ children


@dataclass
class ChildResult:
    ok: bool
    result: Dict[str, Any] = field(default_factory=dict)
    wall: float = 0.0
    error: str = ""  # the last line of the output when it failed, or "timed out after N s"


def run_child(cmd: List[str], timeout: float, env: Optional[Dict[str, str]] = None) -> ChildResult:
    """Run cmd in its own process group; its RESULT line as a dict. Past the timeout
    the whole group (a sweep's Ray processes too) is killed."""
    timeout = max(1.0, min(timeout, time_left()))
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or child_env(), stdout=out, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group (Ray's raylet, workers)
            except ProcessLookupError:
                pass
            proc.wait()
        out.seek(0)
        text = out.read()
    wall = time.perf_counter() - start
    results = [line[len("RESULT "):] for line in text.splitlines() if line.startswith("RESULT ")]
    if results and not timed_out and proc.returncode == 0:
        return ChildResult(True, json.loads(results[-1]), wall)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    error = f"timed out after {timeout:.0f} s" if timed_out else (lines[-1][:300] if lines else f"exit code {proc.returncode}")
    return ChildResult(False, json.loads(results[-1]) if results else {}, wall, error)


def child_env() -> Dict[str, str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child_train(config: str, gpu_id: int, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """Train (in this process) and return its evaluations and peak memory."""
    from search.training.device import current_backend
    from search.training.loop import train

    rows: List[Dict[str, Any]] = []

    def on_evaluation(row) -> None:
        rows.append({"step": row.step, "epoch": row.epoch, "epochs_trained": row.epochs_trained, "words": row.words,
                     "seconds": row.seconds, "score": row.score})

    start = time.perf_counter()
    result = train(config, None, gpu_id=gpu_id, overrides=overrides, on_evaluation=on_evaluation)
    if gpu_id >= 0:
        backend = current_backend()
        backend.synchronize(gpu_id)
        peak, kind = backend.pool_bytes(), "GPU pool"
    else:
        peak, kind = _peak_rss_bytes(), "RSS"
    return {"rows": rows, "best": result.best_score, "stop_reason": result.stop_reason, "peak_bytes": peak,
            "peak_kind": kind, "wall": time.perf_counter() - start}


def child_sweep(packing: int, fraction: float, trials: int, epochs: int, cpus_per_trial: float) -> Dict[str, Any]:
    """One sweep of spaces/tagger.cfg, `packing` trials at once, each asking for `fraction` of a GPU."""
    import ray

    from search.sweep import SweepSettings, sweep
    from search.tracking.mlflow import SweepTracking

    start = time.perf_counter()
    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        settings = SweepSettings(
            space_path=str(ROOT / "spaces" / "tagger.cfg"), num_samples=trials, max_concurrent=packing,
            cpus_per_trial=cpus_per_trial, gpus_per_trial=fraction, tracking_uri=uri, storage=f"{tmp}/sweeps",
            experiment=f"gpu-bench-{packing}", search="random", scheduler="none", seed=0, max_failures=0,
            tracking_wait=10.0,
            overrides={"training.max_epochs": epochs, "paths.train": str(TRAIN), "paths.dev": str(DEV)},
        )
        start = time.perf_counter()
        result = sweep(settings)
        wall = time.perf_counter() - start
        runs = SweepTracking(uri, settings.experiment).trials(result.parent_run_id)
        words = sum(r.data.metrics.get("words", 0.0) for r in runs)
        trial_seconds = [r.data.metrics.get("trial_seconds", 0.0) for r in runs]
    ray.shutdown()
    return {"wall": wall, "ray_start": ray_start, "finished": sum(t.status == "finished" for t in result.trials),
            "failed": [t.error.strip().splitlines()[0][:200] for t in result.trials if t.status == "failed" and t.error.strip()],
            "trials": len(result.trials), "words": words, "trial_seconds": sum(trial_seconds)}


# ------------------------------------------------------------------ parts


def gpu_only_test_files() -> List[Path]:
    """The test files with a test that skips without a GPU (what `grep -rn has_cupy_gpu tests` finds)."""
    return sorted(p for p in (ROOT / "tests").rglob("test_*.py") if "has_cupy_gpu" in p.read_text(encoding="utf8"))


def part_tests(sizes: Sizes) -> Dict[str, Any]:
    files = [str(p.relative_to(ROOT)) for p in gpu_only_test_files()]
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        env = child_env()
        env["PYTHONPATH"] = os.pathsep.join([str(BENCH), env["PYTHONPATH"]])
        cmd = [PY, "-m", "pytest", "-p", "gpu_tests", "-q", "-rfEs", "-p", "no:cacheprovider", f"--junitxml={junit}", *files]
        cmd_shown = "python -m pytest -p gpu_tests " + " ".join(files)
        run = run_child(cmd + ["-o", "addopts="], sizes.tests_timeout, env)
        counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
        failures: List[str] = []
        if junit.exists():
            root = ET.parse(junit).getroot()
            for case in root.iter("testcase"):
                name = f"{case.get('classname', '')}::{case.get('name', '')}"
                if case.find("failure") is not None:
                    counts["failed"] += 1
                    failures.append(name)
                elif case.find("error") is not None:
                    counts["errors"] += 1
                    failures.append(name)
                elif case.find("skipped") is not None:
                    counts["skipped"] += 1
                else:
                    counts["passed"] += 1
    timed_out = run.error.startswith("timed out")
    return {"files": files, "command": cmd_shown, "counts": counts, "failures": failures,
            "wall": run.wall, "timed_out": timed_out, "junit": junit_found(counts)}


def junit_found(counts: Dict[str, int]) -> bool:
    return sum(counts.values()) > 0


def config_overrides(config: Path, steps: int, eval_every: int) -> Tuple[Dict[str, Any], Optional[int]]:
    """Fixed steps, no epoch limit, evaluations every eval_every steps, at the batcher's largest size."""
    from archs import registry
    from search.sweep.gpu_probe import largest_batch_size
    from search.training.config import load_config

    batcher = load_config(config).interpolate()["training"]["batcher"]
    size = largest_batch_size(registry.resolve({"size": batcher["size"]})["size"]) if "size" in batcher else None
    overrides: Dict[str, Any] = {"training.max_steps": steps, "training.max_epochs": 0,
                                 "training.eval_frequency": eval_every, "training.patience": 0}
    if size is not None:
        overrides["training.batcher.size"] = size
    return overrides, size


def missing_requirement(config: Path) -> str:
    """Why a config cannot train here (a model package that is not installed), or ""."""
    import importlib.util

    text = config.read_text(encoding="utf8")
    for name in set(re.findall(r'^name = "([A-Za-z0-9_.-]+)"', text, flags=re.M)):
        if not Path(name).exists() and "/" not in name and importlib.util.find_spec(name.replace("-", "_")) is None:
            return f"model package {name} is not installed"
    return ""


def steady_wps(rows: List[Dict[str, Any]]) -> float:
    """Training words/s between the first and the last evaluation (warm-up, e.g. kernel compilation, excluded)."""
    if not rows:
        return 0.0
    first, last = rows[0], rows[-1]
    if len(rows) >= 2 and last["seconds"] > first["seconds"]:
        return (last["words"] - first["words"]) / (last["seconds"] - first["seconds"])
    return last["words"] / last["seconds"] if last["seconds"] else 0.0


def train_cmd(config: Path, gpu_id: int, overrides: Dict[str, Any]) -> List[str]:
    return [PY, str(Path(__file__).resolve()), "_train", str(config), "--gpu-id", str(gpu_id),
            "--overrides", json.dumps(overrides)]


def part_configs(sizes: Sizes, gpu_id: int, tolerance: float, only: Optional[List[str]], cpu_workers: int) -> List[Dict[str, Any]]:
    configs = sorted((ROOT / "configs").glob("*.cfg"))
    if only:
        configs = [c for c in configs if c.stem in only]
    rows: List[Dict[str, Any]] = []
    start = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=cpu_workers) if cpu_workers else None
    pending = []
    for config in configs:
        row: Dict[str, Any] = {"config": config.stem}
        rows.append(row)
        why = missing_requirement(config)
        if why:
            row["skipped"] = why
            continue
        if time.perf_counter() - start > sizes.configs_budget or time_left() < 20:
            row["skipped"] = "not run: the part's or the run's time was spent"
            continue
        overrides, row["batch"] = config_overrides(config, sizes.steps, sizes.eval_every)
        cpu_cmd = train_cmd(config, -1, overrides)
        if pool:  # the CPU runs (one thread each) beside the GPU runs
            pending.append((row, pool.submit(run_child, cpu_cmd, sizes.child_timeout)))
            row["gpu"] = run_child(train_cmd(config, gpu_id, overrides), sizes.child_timeout)
        else:  # interleaved, one at a time
            row["gpu"] = run_child(train_cmd(config, gpu_id, overrides), sizes.child_timeout)
            row["cpu"] = run_child(cpu_cmd, sizes.child_timeout)
        print(f"  {config.stem}: gpu {summary(row['gpu'])}", flush=True)
    for row, future in pending:
        row["cpu"] = future.result()
    if pool:
        pool.shutdown()
    for row in rows:
        if "skipped" in row:
            continue
        g, c = row["gpu"], row["cpu"]
        if g.ok and c.ok:
            row["diff"] = g.result["rows"][-1]["score"] - c.result["rows"][-1]["score"]
            row["match"] = abs(row["diff"]) <= tolerance
        else:
            row["match"] = False
    return rows


def summary(run: ChildResult) -> str:
    if not run.ok:
        return f"FAILED ({run.error})"
    r = run.result
    return f"{steady_wps(r['rows']):,.0f} words/s, score {r['rows'][-1]['score'] * 100:.2f}, {r['peak_bytes'] / 2**20:,.0f} MiB {r['peak_kind']}"


def epochs_to_reach(rows: List[Dict[str, Any]], target: float) -> Optional[float]:
    for row in rows:
        if row["score"] >= target:
            return row["epochs_trained"]
    return None


def part_schedule(sizes: Sizes, gpu_id: int) -> Dict[str, Any]:
    """The tagger at its own schedule and at the GPU schedule, same epochs; words/s at 32k-word batches."""
    config = ROOT / "configs" / "tagger.cfg"
    epochs = sizes.schedule_epochs
    base = {"paths.train": str(TRAIN), "paths.dev": str(DEV), "training.max_epochs": epochs, "training.max_steps": 0}
    # evaluated often enough to see when a score is reached (the bundled sample is under two 8000-word batches)
    default = run_child(train_cmd(config, gpu_id, {**base, "training.eval_frequency": 25}), sizes.schedule_timeout)
    large = {**base, **GPU_SCHEDULE, "training.eval_frequency": 2, "training.max_epochs": SCHEDULE_EPOCHS_FACTOR * epochs}
    gpu_schedule = run_child(train_cmd(config, gpu_id, large), sizes.schedule_timeout)
    huge = {**base, **GPU_SCHEDULE, "training.batcher.size": 32000, "training.eval_frequency": 2,
            "training.max_epochs": 0, "training.max_steps": 6 if epochs > 1 else 2}
    batch_32k = run_child(train_cmd(config, gpu_id, huge), sizes.schedule_timeout)
    out: Dict[str, Any] = {
        "epochs": epochs, "gpu_epochs": SCHEDULE_EPOCHS_FACTOR * epochs, "default": default, "gpu_schedule": gpu_schedule, "batch_32k": batch_32k
    }
    if default.ok and gpu_schedule.ok:
        target = default.result["rows"][-1]["score"]
        out["target"] = target
        out["epochs_to_target"] = epochs_to_reach(gpu_schedule.result["rows"], target - 0.002)
    return out


def part_sweep(sizes: Sizes, on_gpu: bool) -> List[Dict[str, Any]]:
    rows = []
    cpus = os.cpu_count() or 1
    for packing in sizes.packings:
        if time_left() < 30:
            rows.append({"packing": packing, "fraction": 0.0, "run": ChildResult(False, {}, 0.0, "not run: the run's time was spent")})
            continue
        fraction = round(1.0 / packing, 4) if on_gpu else 0.0
        cpus_per_trial = 1.0 if on_gpu else min(1.0, round(cpus / packing, 2))
        cmd = [PY, str(Path(__file__).resolve()), "_sweep", "--packing", str(packing), "--fraction", str(fraction),
               "--trials", str(sizes.sweep_trials), "--epochs", str(sizes.sweep_epochs), "--cpus-per-trial", str(cpus_per_trial)]
        run = run_child(cmd, sizes.sweep_timeout)
        rows.append({"packing": packing, "fraction": fraction, "run": run})
        print(f"  {packing} per GPU: " + (f"{run.result['finished']}/{run.result['trials']} trials in {run.result['wall']:.0f} s"
                                          if run.ok else f"FAILED ({run.error})"), flush=True)
    return rows


# ------------------------------------------------------------------ report


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def report(results: Dict[str, Any], args, device: str, sizes: Sizes, tolerance: float) -> List[str]:
    mode = " --check-on-cpu" if args.check_on_cpu else ""
    lines = [
        "## GPU: tests, every config on GPU and CPU, the GPU schedule, packed sweeps",
        "",
        f"- Command: `.venv/bin/python bench/gpu.py{mode}{' --gpu-id ' + str(args.gpu_id) if args.gpu_id else ''}`",
        f"- Date: {today()}; machine: {machine()}; device: {device}",
        f"- Versions: {versions()}",
    ]
    if args.check_on_cpu:
        lines.append("- CHECK MODE: both sides ran on the CPU at tiny sizes; these are not GPU figures.")
    if "tests" in results:
        t = results["tests"]
        c = t["counts"]
        lines += ["", "### GPU-only tests", "",
                  f"`{t['command']}` ({t['wall']:.0f} s{', TIMED OUT' if t['timed_out'] else ''}): "
                  f"**{c['passed']} passed, {c['failed']} failed, {c['errors']} errors, {c['skipped']} skipped**"]
        lines += [f"- failed: `{name}`" for name in t["failures"]]
    if "configs" in results:
        lines += ["", f"### Every config, {sizes.steps} steps at the batcher's largest batch, GPU and CPU (same seed, same batches)", "",
                  "| config | batch (words) | GPU words/s | CPU words/s | GPU/CPU | GPU peak memory | CPU peak RSS | dev score GPU | dev score CPU | agree |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for row in results["configs"]:
            if "skipped" in row:
                lines.append(f"| {row['config']} | | | | | | | | | skipped: {row['skipped']} |")
                continue
            g, c = row["gpu"], row["cpu"]
            gw = steady_wps(g.result["rows"]) if g.ok else 0.0
            cw = steady_wps(c.result["rows"]) if c.ok else 0.0
            cells = [
                row["config"], str(row.get("batch") or ""),
                f"{gw:,.0f}" if g.ok else f"failed: {g.error}", f"{cw:,.0f}" if c.ok else f"failed: {c.error}",
                f"{gw / cw:.2f}x" if g.ok and c.ok and cw else "",
                mib(g.result["peak_bytes"]) if g.ok else "", mib(c.result["peak_bytes"]) if c.ok else "",
                f"{g.result['rows'][-1]['score'] * 100:.2f}" if g.ok else "", f"{c.result['rows'][-1]['score'] * 100:.2f}" if c.ok else "",
                "yes" if row["match"] else ("**MISMATCH** " + (f"({row['diff'] * 100:+.2f} points)" if "diff" in row else "(a run failed)")),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append(f"\nScores agree when they differ by at most {tolerance * 100:.1f} points (float32 sums run in another order on the GPU).")
    if "schedule" in results:
        s = results["schedule"]
        lines += ["", "### Tagger: its own schedule against the GPU schedule (bundled sample, 13.8k training words)", "",
                  "| schedule | epochs | dev UPOS at the end | best | words/s | wall |", "|---|---:|---:|---:|---:|---:|"]
        for label, key in ((f"compounding 100-1000 words, lr 0.001 (configs/tagger.cfg) | {s['epochs']}", "default"),
                           (f"GPU: `{gpu_schedule_text()}` | {s['gpu_epochs']}", "gpu_schedule"),
                           ("32000-word batches (speed only, a few steps) | -", "batch_32k")):
            r = s[key]
            if r.ok:
                rows = r.result["rows"]
                lines.append(f"| {label} | {rows[-1]['score'] * 100:.2f} | {max(x['score'] for x in rows) * 100:.2f} | "
                             f"{steady_wps(rows):,.0f} | {r.wall:.0f} s |")
            else:
                lines.append(f"| {label} | failed: {r.error} | | | |")
        lines.append("\n(Evaluations here run every 25 steps (own schedule) and every 2 steps (GPU schedule) to see when a score is reached.)")
        if "target" in s:
            reached = s["epochs_to_target"]
            lines.append(f"\nThe GPU schedule reached the default's final {s['target'] * 100:.2f} (within 0.2) after "
                         + (f"{reached:.1f} epochs." if reached is not None else f"no evaluation within {s['gpu_epochs']} epochs."))
    if "sweep" in results:
        lines += ["",
                  f"### Sweep spaces/tagger.cfg: {sizes.sweep_trials} trials of {sizes.sweep_epochs} epoch(s) on the sample, random search, "
                  "no early stopping", "",
                  "| trials per GPU | --gpus-per-trial | finished | sweep wall | trials per hour | training words/s (all trials) | vs 1 per GPU |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        base = None
        for row in results["sweep"]:
            r = row["run"]
            if not r.ok:
                lines.append(f"| {row['packing']} | {row['fraction']} | failed: {r.error} | | | | |")
                continue
            res = r.result
            wps = res["words"] / res["wall"] if res["wall"] else 0.0
            base = base or wps
            lines.append(f"| {row['packing']} | {row['fraction']} | {res['finished']}/{res['trials']} | {res['wall']:.0f} s | "
                         f"{res['finished'] * 3600 / res['wall']:.0f} | {wps:,.0f} | {wps / base:.2f}x |")
            lines += [f"  - failed trial: {e}" for e in res["failed"][:2]]
    return lines


def gpu_schedule_text() -> str:
    return " ".join(f"--{k} {v}" for k, v in GPU_SCHEDULE.items())


def versions() -> str:
    import numpy
    import thinc

    parts = [f"thinc {thinc.__version__}", f"numpy {numpy.__version__}"]
    try:
        import cupy

        parts.append(f"cupy {cupy.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def describe_gpu(gpu_id: int) -> str:
    """The GPU's name and memory, or raise DeviceError with one line."""
    from search.training.device import DeviceError, current_backend

    backend = current_backend()
    count = backend.device_count()
    if gpu_id >= count:
        raise DeviceError(f"no GPU {gpu_id}: this machine has {count}" if count else "no CUDA GPU found")
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(gpu_id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return f"GPU {gpu_id}: {name}, {props['totalGlobalMem'] / 2**30:.0f} GiB"


# ------------------------------------------------------------------ main


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_train", "_sweep"):
        return child_main(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu-id", type=int, default=0)
    parser.add_argument("--check-on-cpu", action="store_true", help="run every part on the CPU at tiny sizes (no GPU needed)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--configs", default="", help="only these configs (names without .cfg, comma-separated)")
    parser.add_argument("--steps", type=int, default=0, help="configs: training steps (default 40; 4 with --check-on-cpu)")
    parser.add_argument("--schedule-epochs", type=int, default=0, help="schedule: epochs of the default schedule (default 5; 1 with --check-on-cpu)")
    parser.add_argument("--packings", default="", help="sweep: trials per GPU (default 1,2,4,8; 1,2 with --check-on-cpu)")
    parser.add_argument("--sweep-trials", type=int, default=0, help="sweep: trials per packing (default 8; 2 with --check-on-cpu)")
    parser.add_argument("--score-tolerance", type=float, default=0.02, help="configs: largest GPU-CPU dev score difference that agrees")
    parser.add_argument("--deadline", type=float, default=0.0,
                        help=f"seconds the whole run may take (default {DEADLINE_S:.0f}; none with --check-on-cpu)")
    parser.add_argument("--write", action="store_true", help="with --check-on-cpu: write the section anyway (as gpu-cpu-check)")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")

    if args.check_on_cpu:
        sizes, gpu_id, device = CHECK_SIZES, -1, "none (check mode: the GPU side ran on the CPU)"
    else:
        from search.training.device import DeviceError

        try:
            device = describe_gpu(args.gpu_id)
        except (DeviceError, ImportError) as err:
            print(f"bench/gpu.py needs a CUDA GPU with CuPy: {str(err).splitlines()[0]} (--check-on-cpu verifies the script without one)")
            return 1
        sizes, gpu_id = GPU_SIZES, args.gpu_id
    overrides = {"steps": args.steps, "schedule_epochs": args.schedule_epochs, "sweep_trials": args.sweep_trials}
    sizes = Sizes(**{**sizes.__dict__, **{k: v for k, v in overrides.items() if v}})
    if args.packings:
        sizes.packings = tuple(int(p) for p in args.packings.split(","))
    cpu_workers = 0 if args.check_on_cpu else max(0, min(6, ((os.cpu_count() or 1) - 4) // 2))

    global _deadline
    results: Dict[str, Any] = {}
    started = time.perf_counter()
    deadline = args.deadline or (0.0 if args.check_on_cpu else DEADLINE_S)
    _deadline = started + deadline if deadline else float("inf")
    if "tests" in parts:
        print("tests: the GPU-only tests ...", flush=True)
        results["tests"] = part_tests(sizes)
        c = results["tests"]["counts"]
        print(f"  {c['passed']} passed, {c['failed']} failed, {c['errors']} errors, {c['skipped']} skipped "
              f"({results['tests']['wall']:.0f} s)", flush=True)
    if "configs" in parts:
        print(f"configs: {sizes.steps} steps each on the {'GPU' if gpu_id >= 0 else 'CPU (check mode)'} and the CPU ...", flush=True)
        only = [c for c in args.configs.split(",") if c] or None
        results["configs"] = part_configs(sizes, gpu_id, args.score_tolerance, only, cpu_workers)
    if "schedule" in parts:
        print(f"schedule: the tagger at its own schedule and at {gpu_schedule_text()} ...", flush=True)
        results["schedule"] = part_schedule(sizes, gpu_id)
    if "sweep" in parts:
        print(f"sweep: {sizes.sweep_trials} trials at {', '.join(map(str, sizes.packings))} per GPU ...", flush=True)
        results["sweep"] = part_sweep(sizes, gpu_id >= 0)

    lines = report(results, args, device, sizes, args.score_tolerance)
    lines.append(f"\nWhole run: {time.perf_counter() - started:.0f} s.")
    print("\n".join(lines))
    if not args.check_on_cpu:
        write_section(SECTION, lines)
        print(f"written to {BENCH / 'RESULTS.md'} (section {SECTION})")
    elif args.write:
        write_section(f"{SECTION}-cpu-check", lines)
    return verdict(results)


def verdict(results: Dict[str, Any]) -> int:
    """0 when everything ran and agreed; 3 on a score mismatch, a failed test or a failed run."""
    bad = []
    tests = results.get("tests")
    if tests and (tests["counts"]["failed"] or tests["counts"]["errors"] or tests["timed_out"] or not tests["junit"]):
        bad.append("GPU-only tests failed or did not run")
    for row in results.get("configs", []):
        if "skipped" not in row and not row["match"]:
            bad.append(f"config {row['config']}: GPU and CPU disagree or a run failed")
    s = results.get("schedule")
    if s and not all(s[k].ok for k in ("default", "gpu_schedule", "batch_32k")):
        bad.append("schedule: a run failed")
    for row in results.get("sweep", []):
        if not row["run"].ok:
            bad.append(f"sweep at {row['packing']} per GPU failed")
    for line in bad:
        print(f"PROBLEM: {line}")
    return 3 if bad else 0


def child_main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    t = sub.add_parser("_train")
    t.add_argument("config")
    t.add_argument("--gpu-id", type=int, default=-1)
    t.add_argument("--overrides", default="{}")
    s = sub.add_parser("_sweep")
    s.add_argument("--packing", type=int, required=True)
    s.add_argument("--fraction", type=float, required=True)
    s.add_argument("--trials", type=int, required=True)
    s.add_argument("--epochs", type=int, required=True)
    s.add_argument("--cpus-per-trial", type=float, required=True)
    args = parser.parse_args(argv)
    if args.cmd == "_train":
        out = child_train(args.config, args.gpu_id, json.loads(args.overrides))
    else:
        out = child_sweep(args.packing, args.fraction, args.trials, args.epochs, args.cpus_per_trial)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
