"""Parser and NER benchmark: archsweep against spaCy 3.8 with the same architecture
(HashEmbedCNN 96/4/2000/1/3 + TransitionBasedParser.v1, hidden 64, pieces 2; nF 8 for
the parser, 3 for NER), data and hyperparameters, in one run.

    .venv/bin/python bench/parser.py [--task parser|ner|all] [--budget 600] [--cap 1200] [--patience 2000]

Data: full UD English-EWT (parser) and Universal NER English-EWT (NER: the approximate
train file, official dev/test) from ../shared/data. Both libraries see gold words,
one sentence per Doc (spaCy's gold_preproc), and both are scored by
archsweep's scorers (bench/spacy_predict.py; they reproduce `spacy evaluate` exactly).

Per task, archsweep and spaCy run side by side (one process each, one BLAS thread):
1. speed: words per CPU-second of the training process at 1000-word batches, peak RSS;
2. one epoch: dev and test scores of the model after exactly one epoch;
3. budget and convergence, one long run each: evaluating every 200 steps on full dev,
   the best model within `--budget` CPU seconds is kept (model-budget/), and training
   goes on until `--patience` steps bring no better dev score or `--cap` CPU seconds
   pass (which one is reported). Dev and test scores of both models, and inference
   speed (words per CPU-second) of the final best model.
Budgets count the process's CPU seconds, not wall seconds, so a busy machine slows
the run down but does not change what it measures (beyond cache effects).
Writes the `parser` and `ner` sections of bench/RESULTS.md.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, today, write_section  # noqa: E402
from tagger import CACHE, EWT, PY, ROOT, run  # noqa: E402

UNER = ROOT.parent / "shared" / "data" / "uner_english_ewt"
SPACY_LOGGER = ROOT / "bench" / "spacy_wps_logger.py"
ONE_THREAD = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

TASKS = {
    "parser": {
        "config": ROOT / "configs" / "parser.cfg",
        "spacy_config": ROOT / "bench" / "spacy_parser.cfg",
        "files": {s: EWT / f"en_ewt-ud-{s}.conllu" for s in ("train", "dev", "test")},
        "keys": ("dep_uas", "dep_las", "conll_uas", "conll_las"),
    },
    "ner": {
        "config": ROOT / "configs" / "ner.cfg",
        "spacy_config": ROOT / "bench" / "spacy_ner.cfg",
        "files": {
            "train": UNER / "en_ewt-ud-train.approx-from-0c7ce0d.iob2",
            "dev": UNER / "en_ewt-ud-dev.iob2",
            "test": UNER / "en_ewt-ud-test.iob2",
        },
        "keys": ("ents_p", "ents_r", "ents_f"),
    },
}


def docbin(task: str, split: str) -> Path:
    """The split as a spaCy DocBin (gold heads and labels, or entities), 10 sentences per Doc
    (spaCy's gold_preproc splits them back into sentences)."""
    from spacy.lang.en import English
    from spacy.tokens import Doc, DocBin, Span

    from search.corpora.conllu import read_conllu
    from search.corpora.iob2 import read_iob2

    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{split}.{'deps' if task == 'parser' else 'ents'}.spacy"
    if out.exists():
        return out
    path = TASKS[task]["files"][split]
    examples = read_conllu(path) if task == "parser" else read_iob2(path)
    vocab = English().vocab
    db = DocBin(attrs=["ORTH", "HEAD", "DEP", "SENT_START", "ENT_IOB", "ENT_TYPE"])
    for i in range(0, len(examples), 10):
        group = examples[i : i + 10]
        words = [w for eg in group for w in eg.doc.words]
        starts = [j == 0 for eg in group for j in range(len(eg))]
        if task == "parser":
            heads, deps, offset = [], [], 0
            for eg in group:
                heads += [offset + (h if h is not None and h >= 0 else j) for j, h in enumerate(eg.gold["heads"])]
                deps += [d or "dep" for d in eg.gold["deps"]]
                offset += len(eg)
            db.add(Doc(vocab, words=words, heads=heads, deps=deps, sent_starts=starts))
        else:
            doc = Doc(vocab, words=words, sent_starts=starts)
            spans, offset = [], 0
            for eg in group:
                spans += [Span(doc, offset + s, offset + e, label=label) for s, e, label in eg.gold["entities"]]
                offset += len(eg)
            doc.ents = spans
            db.add(doc)
    db.to_disk(out)
    return out


def side_by_side(jobs: Dict[str, Tuple[List[str], float]]) -> Dict[str, Tuple[List[dict], float, float, str]]:
    """Run the named commands at once (one thread each waits on its child)."""
    results: Dict[str, Tuple[List[dict], float, float, str]] = {}
    errors: Dict[str, BaseException] = {}

    def target(name: str, cmd: List[str], timeout: float) -> None:
        try:
            results[name] = run(cmd, ONE_THREAD, timeout=timeout)
        except BaseException as err:  # reported below, after the other job ends
            errors[name] = err

    threads = [threading.Thread(target=target, args=(n, c, t)) for n, (c, t) in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(f"{n}: {e}" for n, e in errors.items()))
    return results


def cpu_words_per_second(rows: List[dict]) -> float:
    """Training words per CPU-second between the first and the last evaluation."""
    first, last = rows[0], rows[-1]
    return (last["words"] - first["words"]) / (last["cpu"] - first["cpu"])


def score_ours(task: str, model: Path, split: str) -> Dict[str, float]:
    from search.corpora.conllu import read_conllu
    from search.corpora.example import count_words
    from search.corpora.iob2 import read_iob2
    from search.training.device import use_cpu
    from search.training.pipeline import load_pipeline

    use_cpu()
    pipeline, _ = load_pipeline(model)
    path = TASKS[task]["files"][split]
    examples = read_conllu(path) if task == "parser" else read_iob2(path)
    start = time.thread_time()  # this thread's CPU: the other task may be scoring in another thread
    scores = pipeline.evaluate(examples)
    cpu = time.thread_time() - start
    out = {k: scores[k] for k in TASKS[task]["keys"]}
    out.update({k: v for k, v in scores.items() if k.startswith("ents_f_")})
    out["words_per_cpu_second"] = count_words(examples) / cpu
    return out


def score_spacy(task: str, model: Path, split: str) -> Dict[str, float]:
    proc = subprocess.run([PY, "bench/spacy_predict.py", str(model), str(TASKS[task]["files"][split])],
                          cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"spacy_predict failed on {model}:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("SCORES "))
    scores = json.loads(line[7:])
    if task == "ner":
        scores.update({f"ents_f_{t}": v["f"] for t, v in (scores.pop("ents_per_type") or {}).items()})
    return scores


def bench_task(task: str, args) -> Dict[str, object]:
    spec = TASKS[task]
    files = {s: str(p) for s, p in spec["files"].items()}
    sp = {s: str(docbin(task, s)) for s in ("train", "dev")}
    out = CACHE / task
    if args.train_limit:
        out = CACHE / f"{task}-limit{args.train_limit}"
    ours_cmd = [PY, "bench/archsweep_run.py", str(spec["config"])]
    spacy_cmd = [PY, "-m", "spacy", "train", str(spec["spacy_config"]), "--code", str(SPACY_LOGGER),
                 "--paths.train", sp["train"], "--paths.dev", sp["dev"]]
    ours_data = {"paths.train": files["train"], "paths.dev": files["dev"], "corpora.train.limit": args.train_limit}
    if args.train_limit:
        spacy_cmd += ["--corpora.train.limit", str(max(1, args.train_limit // 10))]
    r: Dict[str, object] = {}

    print(f"[{task}] speed ...", flush=True)
    speed = side_by_side({
        "ours": (ours_cmd + ["--overrides", json.dumps({
            **ours_data, "corpora.dev.limit": 20, "training.max_epochs": 0, "training.max_steps": args.speed_steps,
            "training.eval_frequency": 100, "training.batcher.size.start": 1000})], 0.0),
        "spacy": (spacy_cmd + ["--corpora.dev.limit", "20", "--training.max_steps", str(args.speed_steps),
                               "--training.eval_frequency", "100", "--training.batcher.size.start", "1000"], 0.0),
    })
    for name, (rows, _, _, _) in speed.items():
        r[f"{name}_wps"], r[f"{name}_rss"] = cpu_words_per_second(rows), max(row["peak_mb"] for row in rows)
    if args.speed_only:
        write_speed(task, r, args)
        print(json.dumps(r, indent=2, default=str), flush=True)
        return r

    print(f"[{task}] one epoch ...", flush=True)
    side_by_side({
        "ours": (ours_cmd + ["--output", str(out / "ours_1ep"), "--overrides", json.dumps(
            {**ours_data, "training.max_epochs": 1, "training.eval_frequency": 10**9})], 0.0),
        "spacy": (spacy_cmd + ["--training.max_epochs", "1", "--training.eval_frequency", "100000",
                               "-o", str(out / "spacy_1ep")], 0.0),
    })
    for split in ("dev", "test"):
        r[f"ours_1ep_{split}"] = score_ours(task, out / "ours_1ep" / "model-last", split)
        r[f"spacy_1ep_{split}"] = score_spacy(task, out / "spacy_1ep" / "model-last", split)

    print(f"[{task}] budget {args.budget:.0f} CPU s, then up to convergence (patience {args.patience} steps, cap {args.cap:.0f} CPU s) ...", flush=True)
    long = side_by_side({
        "ours": (ours_cmd + ["--output", str(out / "ours_long"), "--cpu-budget", str(args.budget), "--cpu-cap", str(args.cap),
                             "--overrides", json.dumps({**ours_data, "training.max_epochs": 0, "training.eval_frequency": 200,
                                                        "training.patience": args.patience})], 0.0),
        "spacy": (spacy_cmd + ["--training.eval_frequency", "200", "--training.patience", str(args.patience),
                               "--training.logger.budget", str(args.budget), "--training.logger.cap", str(args.cap),
                               "-o", str(out / "spacy_long")], 0.0),
    })
    for name, (rows, _, wall, _) in long.items():
        rss = max(row["peak_mb"] for row in rows)
        best = max(rows, key=lambda row: row["score"])
        in_budget = [row for row in rows if row["cpu"] <= args.budget]
        capped = rows[-1]["cpu"] >= args.cap
        r[f"{name}_long"] = {
            "evaluations": len(rows), "cpu": rows[-1]["cpu"], "wall": wall, "rss": rss,
            "epochs_budget": in_budget[-1]["epoch"] if in_budget else 0, "epochs": rows[-1]["epoch"],
            "best_step": best["step"], "best_cpu": best["cpu"],
            "stopped_by": f"the {args.cap:.0f} CPU s cap" if capped else f"patience ({args.patience} steps without a better dev score)",
        }
        score = score_ours if name == "ours" else score_spacy
        for model in ("budget", "best"):
            for split in ("dev", "test"):
                r[f"{name}_{model}_{split}"] = score(task, out / f"{name}_long" / f"model-{model}", split)
    write(task, r, args)
    print(json.dumps(r, indent=2, default=str), flush=True)
    return r


def _pair(r: Dict[str, object], key: str, metric: Tuple[str, ...]) -> Tuple[str, str]:
    cells = []
    for name in ("ours", "spacy"):
        scores = r[f"{name}_{key}"]
        cells.append(" / ".join(f"{scores[m] * 100:.2f}" for m in metric))
    return cells[0], cells[1]


RESULTS_LOCK = threading.Lock()


def write(task: str, r: Dict[str, object], args) -> None:
    import spacy
    import thinc

    command = f".venv/bin/python bench/parser.py --task {args.task} --budget {args.budget:.0f} --cap {args.cap:.0f} --patience {args.patience}"
    if task == "parser":
        title = "## Parser: archsweep vs spaCy 3.8"
        data = "full UD English-EWT v2.16 (train 204,577 words; dev 25,147; test 25,094)"
        arch = "HashEmbedCNN.v1 96/4/2000/1/3 + TransitionBasedParser.v1 (nF 8, hidden 64, pieces 2, upper), min_action_freq 30"
        rows_spec = [("UAS / LAS, punct excluded (spaCy's, primary)", ("dep_uas", "dep_las")),
                     ("UAS / LAS, punct included (CoNLL 2018)", ("conll_uas", "conll_las"))]
    else:
        title = "## NER: archsweep vs spaCy 3.8"
        data = "Universal NER English-EWT: train = the approximate file (see ../shared/data), dev and test official"
        arch = "HashEmbedCNN.v1 96/4/2000/1/3 + TransitionBasedParser.v1 (NER, nF 3, hidden 64, pieces 2, upper), BILUO, PER/LOC/ORG"
        rows_spec = [("P / R / F", ("ents_p", "ents_r", "ents_f")), ("F per type PER / LOC / ORG", ("ents_f_PER", "ents_f_LOC", "ents_f_ORG"))]
    lines = [
        title, "",
        f"- Command: `{command}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- Versions: thinc {thinc.__version__}, spaCy {spacy.__version__}; no GPU; each process single-threaded. archsweep and",
        "  spaCy ran at the same time (with --task all, the parser and NER pairs too) on a 2-core machine other work was",
        "  also using, so every time below is CPU seconds of the process (startup included, as `timeout 600` in",
        "  spaCy's reference measurement included it), not wall seconds.",
        f"- Data: {data}; gold words, one sentence per Doc for both.",
        f"- Architecture: {arch}; oracle cut 100; Adam 0.001, L2 0.01, grad clip 1, dropout 0.1; batches compounding 100->1000.",
        "",
        "| figure | archsweep | spaCy 3.8 | ratio |",
        "|---|---:|---:|---:|",
        f"| training words per CPU-second, 1000-word batches | {r['ours_wps']:,.0f} | {r['spacy_wps']:,.0f} | **{r['ours_wps'] / r['spacy_wps']:.2f}x** |",
        f"| peak RSS of that training process (VmHWM at its last evaluation) | {r['ours_rss']:,.0f} MB | {r['spacy_rss']:,.0f} MB | "
        f"{r['ours_rss'] / r['spacy_rss']:.2f}x |",
        f"| inference words per CPU-second (test, final best model) | {r['ours_best_test']['words_per_cpu_second']:,.0f} | "
        f"{r['spacy_best_test']['words_per_cpu_second']:,.0f} | "
        f"{r['ours_best_test']['words_per_cpu_second'] / r['spacy_best_test']['words_per_cpu_second']:.2f}x |",
    ]
    converged = all("patience" in r[f"{name}_long"]["stopped_by"] for name in ("ours", "spacy"))
    final = "at convergence (patience, see below)" if converged else f"best within the {args.cap:.0f} CPU s cap (not converged, see below)"
    for label, metric in rows_spec:
        for key, when in (("1ep", "after exactly 1 epoch"), ("budget", f"best within {args.budget:.0f} CPU s"), ("best", final)):
            for split in ("dev", "test"):
                ours, theirs = _pair(r, f"{key}_{split}", metric)
                lines.append(f"| {split} {label}, {when} | {ours} | {theirs} | |")
    for name, who in (("ours", "archsweep"), ("spacy", "spaCy")):
        info = r[f"{name}_long"]
        lines.append("")
        lines.append(
            f"- {who} long run: {info['evaluations']} evaluations, {info['epochs_budget']} epochs within the budget, "
            f"{info['epochs']} in all; best dev at step {info['best_step']} ({info['best_cpu']:.0f} CPU s); stopped by "
            f"{info['stopped_by']} after {info['cpu']:.0f} CPU s ({info['wall']:.0f} s wall); peak RSS {info['rss']:,.0f} MB."
        )
    lines += [
        "",
        "Published anchors (context only, different models): " + (
            "UDPipe 2 and Stanza on EWT report CoNLL-2018 LAS in the high 80s with contextual embeddings."
            if task == "parser" else
            "the Universal NER paper's English-EWT F1 86.0 (XLM-R large, official train)."),
        "GPU words/s: not measured, no GPU on this machine (bench/gpu.py measures GPU speed).",
    ]
    with RESULTS_LOCK:
        write_section(task, lines)


def write_speed(task: str, r: Dict[str, object], args) -> None:
    """The `{task}-speed` section: training speed only (--speed-only)."""
    import spacy
    import thinc

    name = "Parser" if task == "parser" else "NER"
    lines = [
        f"## {name} training speed: archsweep vs spaCy 3.8", "",
        f"- Command: `.venv/bin/python bench/parser.py --task {args.task} --speed-only --speed-steps {args.speed_steps}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- Versions: thinc {thinc.__version__}, spaCy {spacy.__version__}; no GPU; each process single-threaded, archsweep",
        "  and spaCy at the same time (one core each), so the figures are words per CPU-second of each process.",
        f"- The data and architecture of the `{task}` section (whose other figures come from its own, full run); {args.speed_steps}",
        "  steps at 1000-word batches, words per CPU-second between the first evaluation (step 100) and the last.",
        "",
        "| figure | archsweep | spaCy 3.8 | ratio |",
        "|---|---:|---:|---:|",
        f"| training words per CPU-second, 1000-word batches | {r['ours_wps']:,.0f} | {r['spacy_wps']:,.0f} | **{r['ours_wps'] / r['spacy_wps']:.2f}x** |",
        f"| peak RSS of that training process | {r['ours_rss']:,.0f} MB | {r['spacy_rss']:,.0f} MB | {r['ours_rss'] / r['spacy_rss']:.2f}x |",
    ]
    with RESULTS_LOCK:
        write_section(f"{task}-speed", lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("parser", "ner", "all"), default="all")
    parser.add_argument("--speed-steps", type=int, default=300)
    parser.add_argument("--budget", type=float, default=600.0, help="CPU seconds for the 'best within budget' figure")
    parser.add_argument("--cap", type=float, default=1200.0, help="CPU seconds after which the long run stops")
    parser.add_argument("--patience", type=int, default=2000, help="steps without a better dev score that end the long run")
    parser.add_argument("--speed-only", action="store_true",
                        help="measure training speed only (minutes, not hours) and write the TASK-speed section")
    parser.add_argument("--train-limit", type=int, default=0,
                        help="train on the first N sentences only (a quick check of this script; 0 = all)")
    args = parser.parse_args()
    tasks = ["parser", "ner"] if args.task == "all" else [args.task]
    for task in tasks:
        missing = [str(p) for p in TASKS[task]["files"].values() if not p.exists()]
        if missing:
            print(f"{task}: corpus files not found ({', '.join(missing)}): this benchmark needs ../shared/data beside the checkout")
            return 2
    return run_in_threads(tasks, lambda task: bench_task(task, args))


def run_in_threads(tasks: List[str], bench: Callable[[str], object]) -> int:
    """bench(task) for every task at once, one thread each; 1 if any failed (each failure is
    printed and the others go on), else 0."""
    failed: List[str] = []

    def bench_one(task: str) -> None:
        try:
            bench(task)
        except Exception as err:
            failed.append(task)
            print(f"[{task}] failed: {err}", flush=True)

    threads = [threading.Thread(target=bench_one, args=(task,)) for task in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
