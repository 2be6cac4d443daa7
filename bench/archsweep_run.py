"""Child process of bench/tagger.py: trains archsweep with overrides and prints one
JSON row per evaluation (stopping after --wall-budget seconds of wall time)."""

import argparse
import json
import sys
import time

from search.training import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--overrides", default="{}", help="JSON object of dotted overrides")
    parser.add_argument("--wall-budget", type=float, default=0.0, help="stop after this many seconds (0: no limit)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    start = time.perf_counter()

    def report(row) -> bool:
        wall = time.perf_counter() - start
        print("ROW " + json.dumps({"epoch": row.epoch, "step": row.step, "words": row.words, "seconds": row.seconds, "wall": wall, "score": row.score, "scores": row.scores}), flush=True)
        return bool(args.wall_budget) and wall >= args.wall_budget

    result = train(args.config, args.output, overrides=json.loads(args.overrides), on_evaluation=report)
    print("DONE " + json.dumps({"stop_reason": result.stop_reason, "best": result.best_score}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
