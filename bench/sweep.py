"""Sweep benchmarks, each writing its section of bench/RESULTS.md.

    .venv/bin/python bench/sweep.py overhead     # per-trial overhead, against a no-op Ray Tune sweep
    .venv/bin/python bench/sweep.py efficiency   # TPE+ASHA vs random search at the same compute (full EWT)

overhead: the same N trials, K at a time, on one local Ray: archsweep's sweep (space
spaces/tagger.cfg, bundled sample, 1 epoch per trial, random search, no early stopping)
and, as the anchor, plain Ray Tune running a function that only reports once. Per-trial
overhead = (sweep wall x K - sum of the trials' own wall time) / N. archsweep's sweep runs
twice: into a new MLflow database (a project's first sweep), then into the same one again.

efficiency: spaces/tagger.cfg on full UD English-EWT from ../shared/data, up to
--max-epochs epochs per trial. Random search without early stopping runs
budget/max_epochs trials; TPE + ASHA runs until the same number of trial-epochs is spent.
Per seed (--seeds, a pair of sweeps each), the best dev score of each and the trial-epochs
each needed to reach random search's best; then their median and range over the seeds.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, today, write_section  # noqa: E402

EWT = ROOT.parent / "shared" / "data" / "ud_english_ewt"


def overhead(args) -> None:
    import ray
    from ray import tune

    from search.sweep import SweepSettings, sweep
    from search.tracking.mlflow import SweepTracking

    n, k = args.trials, args.concurrent
    start = time.perf_counter()
    ray.init(num_cpus=k, include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray_init = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        # anchor: plain Ray Tune, a function trainable that reports once
        def noop(config):
            tune.report({"score": 1.0})

        start = time.perf_counter()
        tune.Tuner(
            tune.with_resources(noop, {"cpu": 1}),
            tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=k),
            run_config=tune.RunConfig(storage_path=tmp, name="noop", verbose=0),
        ).fit()
        noop_wall = time.perf_counter() - start

        uri = f"sqlite:///{tmp}/mlflow.db"
        settings = SweepSettings(
            space_path=str(ROOT / "spaces" / "tagger.cfg"), num_samples=n, max_concurrent=k, tracking_uri=uri,
            storage=f"{tmp}/sweeps", search="random", scheduler="none",
            overrides={"training.max_epochs": 1, "paths.train": str(ROOT / "data/ud_english_ewt/en_ewt-ud-train.sample.conllu"),
                       "paths.dev": str(ROOT / "data/ud_english_ewt/en_ewt-ud-dev.sample.conllu")},
        )
        # the first sweep creates the MLflow database (its schema: about 2 s, once per store);
        # the second is every later sweep of a project that keeps its runs/mlflow.db
        rows = {}
        for label in ("archsweep sweep, new MLflow database", "archsweep sweep, the same database again"):
            start = time.perf_counter()
            result = sweep(settings)
            sweep_wall = time.perf_counter() - start
            runs = SweepTracking(uri, "tagger").trials(result.parent_run_id)
            trial_seconds = sum(r.data.metrics.get("trial_seconds", 0.0) for r in runs)
            rows[label] = (sweep_wall, trial_seconds, (sweep_wall * k - trial_seconds) / n)
    ray.shutdown()
    anchor = noop_wall * k / n
    lines = [
        "## Sweep: per-trial overhead",
        "",
        f"- Command: `.venv/bin/python bench/sweep.py overhead --trials {n} --concurrent {k}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- {n} trials, {k} at a time, one local Ray (ray.init {ray_init:.1f} s, not counted); archsweep: spaces/tagger.cfg,",
        "  bundled sample, 1 epoch per trial, random search, no scheduler, MLflow in SQLite (the same sweep twice,",
        "  from one Python process: into a new database, then into the same one again, with the driver's imports",
        "  and first-use costs already paid, as in a notebook); anchor: plain Ray Tune, a function trainable that",
        "  reports once (no training, no tracking).",
        "",
        "| | sweep wall | sum of trials' own time | overhead per trial | ratio to the anchor |",
        "|---|---:|---:|---:|---:|",
        *(f"| {label} | {wall:.1f} s | {own:.1f} s | **{per_trial:.2f} s** | {per_trial / anchor:.2f}x |"
          for label, (wall, own, per_trial) in rows.items()),
        f"| plain Ray Tune, no-op trials | {noop_wall:.1f} s | ~0 s | {anchor:.2f} s | 1x |",
        "",
        "Overhead per trial = (sweep wall x concurrency - sum of trial wall times) / trials: actor start and the",
        "worker's imports (once per worker process: archsweep's workers run trial after trial, the anchor starts",
        "one per trial), scheduling, Optuna proposals, filling the config, MLflow child runs (driver side), a",
        "concurrency slot left idle while the last trials finish, and the sweep's start and end (space",
        "validation, the MLflow parent run, best-config export and report). A trial's own time starts when its",
        "function starts (corpus reading, model initialization, training, evaluation).",
    ]
    write_section("sweep-overhead", lines)
    print("\n".join(lines))


RANDOM, TPE_ASHA = "random, no early stopping", "TPE + ASHA"


def efficiency(args) -> None:
    import ray
    from sweep_vs_default import vectors_overrides

    from search.space import Space

    if not EWT.exists():
        print(f"full UD English-EWT not found at {EWT}: this benchmark needs ../shared/data beside the checkout")
        sys.exit(2)
    seeds = [int(s) for s in args.seeds.split(",")]
    space = ROOT / "spaces" / "tagger.cfg"
    overrides = {
        "paths.train": str(EWT / "en_ewt-ud-train.conllu"),
        "paths.dev": str(EWT / "en_ewt-ud-dev.conllu"),
        "training.max_epochs": args.max_epochs,
        "training.eval_frequency": args.eval_frequency,
        **vectors_overrides(sample=False),
    }
    ray.init(num_cpus=args.concurrent, include_dashboard=False, configure_logging=False, log_to_driver=False)
    runs = [run_arms(args, seed, overrides) for seed in seeds]
    ray.shutdown()
    vectors = overrides.get("paths.vectors")
    lines = [
        "## Sweep: search efficiency, TPE + ASHA vs random search",
        "",
        f"- Command: `.venv/bin/python bench/sweep.py efficiency --budget {args.budget:g} --max-epochs {args.max_epochs} "
        f"--time-attr {args.time_attr} --grace-period {args.grace_period:g} --seeds {args.seeds}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- spaces/tagger.cfg ({len(Space.from_disk(space).dimensions)} dimensions; its vectors choice offering"
        f" {vectors or 'the bundled GloVe sample'}) on full UD English-EWT (../shared/data), dev UPOS accuracy,",
        f"  up to {args.max_epochs} epochs per trial, evaluation every {args.eval_frequency} steps, {args.concurrent} trials at a time;",
        f"  compute budget {args.budget:g} trial-epochs per arm (training words / corpus words, summed over trials);",
        f"  ASHA's rungs by {args.time_attr} from {args.grace_period:g}; both arms seeded alike, each seed a separate pair of sweeps.",
        "",
        "| seed | search | trials (finished / pruned / failed) | trial-epochs used | best dev UPOS | trial-epochs to reach random's best | wall |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for seed, arms in zip(seeds, runs):
        for arm, (counts, used, best, reach, wall) in arms.items():
            lines.append(f"| {seed} | {arm} | {sum(counts)} ({' / '.join(map(str, counts))}) | {used:.1f} | {best * 100:.2f} % | "
                         f"{'not reached' if reach is None else f'{reach:.1f}'} | {wall / 60:.1f} min |")
    lines += ["", "Over the seeds (median, and min - max):", "",
              "| search | best dev UPOS | trial-epochs to reach random's best |", "|---|---:|---:|"]
    for arm in (RANDOM, TPE_ASHA):
        bests = [arms[arm][2] * 100 for arms in runs]
        reaches = [arms[arm][3] for arms in runs]
        reached = [r for r in reaches if r is not None]
        reach_text = (f"{statistics.median(reached):.1f} ({min(reached):.1f} - {max(reached):.1f})" if reached else "-")
        if len(reached) < len(reaches):
            reach_text += f"; not reached in {len(reaches) - len(reached)} of {len(reaches)} seeds"
        lines.append(f"| {arm} | {statistics.median(bests):.2f} % ({min(bests):.2f} - {max(bests):.2f}) | {reach_text} |")
    lines += [
        "",
        "Trial-epochs are counted as each evaluation is logged (events from all trials in time order). Random search",
        "reaches its own best when it finds it, so its column is where in its budget that happened. Trials cut by",
        "the budget count as pruned.",
    ]
    write_section("sweep-efficiency", lines)
    print("\n".join(lines))


def run_arms(args, seed: int, overrides: Dict[str, Any]) -> Dict[str, Tuple[List[int], float, float, Optional[float], float]]:
    """Random search and TPE + ASHA at the same compute, seeded `seed`: per arm, the trial
    counts (finished, pruned, failed), the trial-epochs used, the best dev score, the
    trial-epochs spent when random search's best was first reached, and the wall time."""
    from mlflow.tracking import MlflowClient

    from search.sweep import SweepSettings, sweep

    curves, outcomes = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        for arm, search, scheduler, n in ((RANDOM, "random", "none", int(round(args.budget / args.max_epochs))),
                                          (TPE_ASHA, "tpe", "asha", 1000)):
            settings = SweepSettings(
                space_path=str(ROOT / "spaces" / "tagger.cfg"), num_samples=n, max_concurrent=args.concurrent,
                tracking_uri=uri, experiment=search, storage=f"{tmp}/sweeps", seed=seed, search=search,
                scheduler=scheduler, time_attr=args.time_attr, grace_period=args.grace_period,
                # ASHA's last rung at the trials' own length: a trial that reaches it has finished
                max_t=args.max_epochs if args.time_attr == "epochs" else 100, budget_epochs=args.budget if search == "tpe" else 0.0,
                overrides=overrides,
            )
            print(f"seed {seed}: {arm} ...", flush=True)
            start = time.perf_counter()
            result = sweep(settings)
            wall = time.perf_counter() - start
            curves[arm] = _curve(MlflowClient(uri), result)
            counts = [sum(t.status == s for t in result.trials) for s in ("finished", "pruned", "failed")]
            outcomes[arm] = (counts, wall)
    random_best = max((score for _, score in curves[RANDOM]), default=float("nan"))
    arms = {}
    for arm, curve in curves.items():
        counts, wall = outcomes[arm]
        used = curve[-1][0] if curve else 0.0
        best = max((score for _, score in curve), default=float("nan"))
        reach = next((epochs for epochs, score in curve if score >= random_best), None)
        arms[arm] = (counts, used, best, reach, wall)
    return arms


def _curve(client, result) -> List[Tuple[float, float]]:
    """(trial-epochs spent so far, score) at every evaluation of the sweep, in time order."""
    events = []
    for trial in result.trials:
        epochs = client.get_metric_history(trial.run_id, "epochs_trained")
        scores = {m.step: m.value for m in client.get_metric_history(trial.run_id, "score")}
        for m in epochs:
            events.append((m.timestamp, trial.run_id, m.value, scores.get(m.step, float("nan"))))
    events.sort()
    spent: Dict[str, float] = {}
    curve = []
    for _, run_id, epochs, score in events:
        spent[run_id] = epochs
        curve.append((sum(spent.values()), score))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("overhead")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--concurrent", type=int, default=2)
    p = sub.add_parser("efficiency")
    p.add_argument("--budget", type=float, default=8.0, help="trial-epochs per arm")
    p.add_argument("--max-epochs", type=int, default=1)
    p.add_argument("--eval-frequency", type=int, default=100)
    p.add_argument("--time-attr", choices=("epochs", "evaluations"), default="epochs", help="what ASHA's rungs count")
    p.add_argument("--grace-period", type=float, default=0.25, help="ASHA's first rung, in --time-attr's unit")
    p.add_argument("--concurrent", type=int, default=2)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated: a pair of sweeps per seed")
    args = parser.parse_args()
    {"overhead": overhead, "efficiency": efficiency}[args.command](args)


if __name__ == "__main__":
    main()
