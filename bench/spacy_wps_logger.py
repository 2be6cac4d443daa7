"""spaCy logger for the benchmarks (after ../shared/spacy-baseline/wps_logger.py):
one JSON row per evaluation with training words, seconds, process CPU seconds and scores.

`budget` (CPU seconds, 0 = off): while the process has used at most this much CPU, every
new best checkpoint is copied to model-budget/ beside model-best/ (spaCy saves the
checkpoint before it calls the logger), so the best model *within* the budget can be
scored later. `cap` (CPU seconds, 0 = off): end the process right after the first
evaluation past it; model-best/ is already on disk, and os._exit skips spaCy's
save-on-exception, which would overwrite model-best with the last model."""

import json
import os
import shutil
import sys
import time
from pathlib import Path

from spacy.util import registry


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: a child keeps the parent's
    maxrss across fork and exec, so a large benchmark driver would inflate it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@registry.loggers("archsweep_bench_logger.v1")
def bench_logger(budget: float = 0.0, cap: float = 0.0):
    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        start = time.perf_counter()
        best_in_budget = float("-inf")

        def log_step(info):
            nonlocal best_in_budget
            if info is None:
                return
            cpu = time.process_time()
            row = {
                "epoch": info["epoch"],
                "step": info["step"],
                "words": info["words"],
                "seconds": info["seconds"],
                "wall": time.perf_counter() - start,
                "cpu": cpu,
                "score": float(info["score"]),
                "peak_mb": peak_rss_mb(),
            }
            stdout.write("ROW " + json.dumps(row) + "\n")
            stdout.flush()
            output = info.get("output_path")
            if budget and output and cpu <= budget and row["score"] > best_in_budget:
                best_in_budget = row["score"]
                snapshot = Path(output).parent / "model-budget"
                shutil.rmtree(snapshot, ignore_errors=True)
                shutil.copytree(Path(output).parent / "model-best", snapshot)
            if cap and cpu >= cap:
                stdout.write("DONE cap\n")
                stdout.flush()
                os._exit(0)

        return log_step, lambda: None

    return setup
