"""Sweep benchmarks, each writing its section of bench/RESULTS.md.

    .venv/bin/python bench/sweep.py overhead     # per-trial overhead, against a no-op Ray Tune sweep
    .venv/bin/python bench/sweep.py efficiency   # TPE+ASHA vs random search at the same compute (full EWT)

overhead: the same N trials, K at a time, on one local Ray: archsweep's sweep (space
spaces/tagger.cfg, bundled sample, 1 epoch per trial, random search, no early stopping)
and, as the anchor, plain Ray Tune running a function that only reports once. Per-trial
overhead = (sweep wall x K - sum of the trials' own wall time) / N.

efficiency: spaces/tagger.cfg on full UD English-EWT from ../shared/data, up to
--max-epochs epochs per trial. Random search without early stopping runs
budget/max_epochs trials; TPE + ASHA runs until the same number of trial-epochs is spent.
Reports the best dev score of each and the trial-epochs TPE + ASHA needed to reach
random search's best.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

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
        start = time.perf_counter()
        result = sweep(settings)
        sweep_wall = time.perf_counter() - start
        runs = SweepTracking(uri, "tagger").trials(result.parent_run_id)
        trial_seconds = [r.data.metrics.get("trial_seconds", 0.0) for r in runs]
    ray.shutdown()
    ours = (sweep_wall * k - sum(trial_seconds)) / n
    anchor = noop_wall * k / n
    lines = [
        "## Sweep: per-trial overhead",
        "",
        "- Command: `.venv/bin/python bench/sweep.py overhead`",
        f"- Date: {today()}; machine: {machine()}",
        f"- {n} trials, {k} at a time, one local Ray (ray.init {ray_init:.1f} s, not counted); archsweep: spaces/tagger.cfg,",
        "  bundled sample, 1 epoch per trial, random search, no scheduler, MLflow in SQLite; anchor: plain Ray Tune,",
        "  a function trainable that reports once (no training, no tracking).",
        "",
        "| | sweep wall | sum of trials' own time | overhead per trial |",
        "|---|---:|---:|---:|",
        f"| archsweep sweep | {sweep_wall:.1f} s | {sum(trial_seconds):.1f} s | **{ours:.2f} s** |",
        f"| plain Ray Tune, no-op trials | {noop_wall:.1f} s | ~0 s | {anchor:.2f} s |",
        f"| ratio | | | {ours / anchor:.2f}x |",
        "",
        "Overhead per trial = (sweep wall x concurrency - sum of trial wall times) / trials: actor start and the",
        "worker's imports (once per worker process: archsweep's workers run trial after trial, the anchor starts",
        "one per trial), scheduling, Optuna proposals, filling the config, MLflow child runs (driver side), a",
        "concurrency slot left idle while the last trials finish, and the sweep's start and end (space",
        "validation, the MLflow database, best-config export and report). A trial's own time starts when its",
        "function starts (corpus reading, model initialization, training, evaluation).",
    ]
    write_section("sweep-overhead", lines)
    print("\n".join(lines))


def efficiency(args) -> None:
    import ray
    from mlflow.tracking import MlflowClient

    from search.sweep import SweepSettings, sweep

    if not EWT.exists():
        print(f"full UD English-EWT not found at {EWT}: this benchmark needs ../shared/data beside the checkout")
        sys.exit(2)
    budget = args.budget
    overrides = {
        "paths.train": str(EWT / "en_ewt-ud-train.conllu"),
        "paths.dev": str(EWT / "en_ewt-ud-dev.conllu"),
        "training.max_epochs": args.max_epochs,
        "training.eval_frequency": args.eval_frequency,
    }
    ray.init(num_cpus=args.concurrent, include_dashboard=False, configure_logging=False, log_to_driver=False)
    arms = {}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        for arm, search, scheduler, n in (
            ("random, no early stopping", "random", "none", int(round(budget / args.max_epochs))),
            ("TPE + ASHA", "tpe", "asha", 1000),
        ):
            settings = SweepSettings(
                space_path=str(ROOT / "spaces" / "tagger.cfg"), num_samples=n, max_concurrent=args.concurrent,
                tracking_uri=uri, experiment=search, storage=f"{tmp}/sweeps", seed=args.seed, search=search,
                scheduler=scheduler, grace_period=args.grace_period, budget_epochs=budget if search == "tpe" else 0.0,
                overrides=overrides,
            )
            print(f"{arm} ...", flush=True)
            start = time.perf_counter()
            result = sweep(settings)
            wall = time.perf_counter() - start
            arms[arm] = (result, wall, _curve(MlflowClient(uri), result))
    ray.shutdown()
    random_best = max(s for _, s in arms["random, no early stopping"][2]) if arms["random, no early stopping"][2] else float("nan")
    lines = [
        "## Sweep: search efficiency, TPE + ASHA vs random search",
        "",
        f"- Command: `.venv/bin/python bench/sweep.py efficiency --budget {budget:g} --max-epochs {args.max_epochs}`",
        f"- Date: {today()}; machine: {machine()}",
        "- spaces/tagger.cfg (11 dimensions) on full UD English-EWT (../shared/data), dev UPOS accuracy, up to",
        f"  {args.max_epochs} epochs per trial, evaluation every {args.eval_frequency} steps, {args.concurrent} trials at a time,",
        f"  seed {args.seed}; compute budget {budget:g} trial-epochs (training words / corpus words, summed over trials).",
        "",
        "| search | trials (finished / pruned / failed) | trial-epochs used | best dev UPOS | trial-epochs to reach random's best | wall |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for arm, (result, wall, curve) in arms.items():
        counts = [sum(t.status == s for t in result.trials) for s in ("finished", "pruned", "failed")]
        used = curve[-1][0] if curve else 0.0
        best = max(s for _, s in curve) if curve else float("nan")
        reach = next((e for e, s in curve if s >= random_best), None)
        reach_text = f"{reach:.1f}" if reach is not None else "not reached"
        lines.append(
            f"| {arm} | {len(result.trials)} ({' / '.join(map(str, counts))}) | {used:.1f} | {best * 100:.2f} % | {reach_text} | {wall / 60:.1f} min |"
        )
    lines += [
        "",
        "Trial-epochs are counted as each evaluation is logged (events from all trials in time order); one run",
        "per arm, so the difference includes seed noise. Trials cut by the budget count as pruned.",
    ]
    write_section("sweep-efficiency", lines)
    print("\n".join(lines))


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
    p.add_argument("--budget", type=float, default=24.0, help="trial-epochs per arm")
    p.add_argument("--max-epochs", type=int, default=3)
    p.add_argument("--eval-frequency", type=int, default=100)
    p.add_argument("--grace-period", type=int, default=2)
    p.add_argument("--concurrent", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    {"overhead": overhead, "efficiency": efficiency}[args.command](args)


if __name__ == "__main__":
    main()
