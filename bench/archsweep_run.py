"""Child process of the benchmarks: trains archsweep with overrides and prints one
JSON row per evaluation (with process CPU seconds).

--wall-budget: stop after this many seconds of wall time. --cpu-budget: while the
process has used at most this much CPU, copy each new best model-best/ to
model-budget/ (the best model within the budget). --cpu-cap: stop at the first
evaluation past this much CPU."""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from search.training.loop import train
from search.training.run_output import staging_path


def rss_mb(field: str = "VmHWM") -> float:
    """This process's own peak RSS (VmHWM), or its current RSS (VmRSS). Not ru_maxrss: a
    child keeps the parent's maxrss across fork and exec, so a large benchmark driver
    would inflate it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--overrides", default="{}", help="JSON object of dotted overrides")
    parser.add_argument("--wall-budget", type=float, default=0.0, help="stop after this many seconds (0: no limit)")
    parser.add_argument("--cpu-budget", type=float, default=0.0, help="snapshot the best model within this much CPU (s)")
    parser.add_argument("--cpu-cap", type=float, default=0.0, help="stop after this much CPU (s; 0: no limit)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    best_in_budget = float("-inf")

    def report(row) -> bool:
        nonlocal best_in_budget
        wall, cpu = time.perf_counter() - start, time.process_time()
        print("ROW " + json.dumps({"epoch": row.epoch, "step": row.step, "words": row.words, "seconds": row.seconds,
                                   "wall": wall, "cpu": cpu, "score": row.score, "scores": row.scores,
                                   "peak_mb": rss_mb(), "rss_mb": rss_mb("VmRSS")}), flush=True)
        if args.cpu_budget and args.output and cpu <= args.cpu_budget and row.score > best_in_budget:
            best_in_budget = row.score
            snapshot = Path(args.output) / "model-budget"
            shutil.rmtree(snapshot, ignore_errors=True)
            shutil.copytree(staging_path(Path(args.output)) / "model-best", snapshot)  # the run moves in at its end
        return bool(args.wall_budget and wall >= args.wall_budget) or bool(args.cpu_cap and cpu >= args.cpu_cap)

    result = train(args.config, args.output, overrides=json.loads(args.overrides), on_evaluation=report, overwrite=True)
    print("DONE " + json.dumps({"stop_reason": result.stop_reason, "best": result.best_score}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
