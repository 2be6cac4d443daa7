"""Tagger benchmark: archsweep against spaCy 3.8 with the same architecture
(HashEmbedCNN 96/4/2000/1/3 + Tagger.v1, UPOS labels), data (full UD English-EWT
from ../shared/data) and hyperparameters, on this machine, in one run.

    make bench                   # or: .venv/bin/python bench/tagger.py [--budget 600] [--spacy-budget]

Measures: training words/s at 1000-word batches (ratio to spaCy) and peak memory;
dev UPOS after exactly one epoch (both); best dev UPOS within a wall-clock budget
(archsweep; spaCy too with --spacy-budget, else spaCy's figure measured on the same machine kind, stated below).
Writes the results into bench/RESULTS.md.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, today, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EWT = ROOT.parent / "shared" / "data" / "ud_english_ewt"
CACHE = ROOT / "bench" / ".cache"
PY = sys.executable
CONFIG = ROOT / "configs" / "tagger.cfg"
SPACY_CONFIG = ROOT / "bench" / "spacy_tagger.cfg"
SPACY_LOGGER = ROOT / "bench" / "spacy_wps_logger.py"
PARITY_SPACY_BUDGET = "UPOS 94.31 % best / 94.17 % at the end of 600 s (spaCy 3.8 measured on the same machine kind)"


def run(cmd: List[str], env: Dict[str, str], timeout: float = 0.0) -> Tuple[List[dict], float, float, str]:
    """Run a child; return its ROW records, peak RSS (MB), wall seconds and output.
    A timeout sends SIGINT (spaCy) and the rows so far are kept."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows, lines = [], []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("ROW "):
            rows.append(json.loads(line[4:]))
        if timeout and time.perf_counter() - start > timeout:
            proc.kill()
            break
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    output = "".join(lines)
    if status != 0 and not (timeout and wall > timeout):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    return rows, usage.ru_maxrss / 1024, wall, output


def steady_words_per_second(rows: List[dict], clock: str = "seconds") -> float:
    """Training words/s between the first and the last evaluation (warm-up excluded).
    clock: the rows' time field; spaCy's own "seconds" are whole seconds, so its rows
    are timed by "wall" (the logger's clock, to the microsecond)."""
    first, last = rows[0], rows[-1]
    return (last["words"] - first["words"]) / (last[clock] - first[clock])


def make_docbins() -> Tuple[Path, Path]:
    """EWT as spaCy DocBins, 10 sentences per Doc, UPOS as the tag (as spaCy's reference measurement)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = (CACHE / "train.spacy", CACHE / "dev.spacy")
    if all(p.exists() for p in paths):
        return paths
    from spacy.lang.en import English
    from spacy.tokens import Doc, DocBin

    from search.corpora.conllu import read_conllu

    vocab = English().vocab
    for split, out in zip(("train", "dev"), paths):
        examples = read_conllu(EWT / f"en_ewt-ud-{split}.conllu")
        db = DocBin(attrs=["ORTH", "TAG", "SENT_START"])
        for i in range(0, len(examples), 10):
            group = examples[i : i + 10]
            words = [w for eg in group for w in eg.doc.words]
            starts = [j == 0 for eg in group for j in range(len(eg))]
            doc = Doc(vocab, words=words, sent_starts=starts)
            for token, tag in zip(doc, [t for eg in group for t in eg.gold["upos"]]):
                token.tag_ = tag or ""
            db.add(doc)
        db.to_disk(out)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=600.0, help="wall-clock budget for the best-score run (s)")
    parser.add_argument("--speed-steps", type=int, default=800)
    parser.add_argument("--spacy-budget", action="store_true", help="also run spaCy for the budget (adds its length)")
    parser.add_argument("--skip-budget", action="store_true")
    args = parser.parse_args()
    if not EWT.exists():
        print(f"full UD English-EWT not found at {EWT}: this benchmark needs ../shared/data beside the checkout")
        return 2
    train, dev = EWT / "en_ewt-ud-train.conllu", EWT / "en_ewt-ud-dev.conllu"
    one_thread = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    spacy_train, spacy_dev = make_docbins()
    results: Dict[str, object] = {}

    # 1. speed at constant 1000-word batches; small dev evaluations every 100 steps
    ours_speed = {
        "paths.train": str(train), "paths.dev": str(dev), "corpora.dev.limit": 200,
        "training.max_epochs": 0, "training.max_steps": args.speed_steps, "training.eval_frequency": 100,
        "training.batcher.size.start": 1000,
    }
    spacy_speed = [
        "--paths.train", str(spacy_train), "--paths.dev", str(spacy_dev), "--corpora.dev.limit", "20",
        "--training.max_steps", str(args.speed_steps), "--training.eval_frequency", "100",
        "--training.batcher.size.start", "1000",
    ]
    spacy_cmd = [PY, "-m", "spacy", "train", str(SPACY_CONFIG), "--code", str(SPACY_LOGGER)]
    ours_cmd = [PY, "bench/archsweep_run.py", str(CONFIG)]
    print("speed: spaCy ...", flush=True)
    rows, rss, wall, _ = run(spacy_cmd + spacy_speed, one_thread)
    results["spacy_wps"], results["spacy_rss"] = steady_words_per_second(rows, clock="wall"), rss
    print("speed: archsweep ...", flush=True)
    rows, rss, wall, _ = run(ours_cmd + ["--overrides", json.dumps(ours_speed)], one_thread)
    results["ours_wps_1t"], results["ours_rss"] = steady_words_per_second(rows), rss

    # 2. dev UPOS after exactly one epoch (the config's own compounding batches)
    one_epoch = {"paths.train": str(train), "paths.dev": str(dev), "training.max_epochs": 1, "training.eval_frequency": 10**9}
    print("one epoch: archsweep ...", flush=True)
    rows, _, wall, _ = run(ours_cmd + ["--overrides", json.dumps(one_epoch)], one_thread)
    results["ours_1ep"], results["ours_1ep_wall"] = rows[-1]["score"], wall
    print("one epoch: spaCy ...", flush=True)
    out = CACHE / "spacy_1ep"
    _, _, wall, _ = run(
        spacy_cmd + ["--paths.train", str(spacy_train), "--paths.dev", str(spacy_dev), "--training.max_epochs", "1",
                     "--training.eval_frequency", "100000", "-o", str(out)], one_thread)
    metrics = CACHE / "spacy_1ep.json"
    subprocess.run([PY, "-m", "spacy", "evaluate", str(out / "model-last"), str(spacy_dev), "--gold-preproc",
                    "--output", str(metrics)], cwd=ROOT, env=one_thread, check=True, capture_output=True)
    results["spacy_1ep"], results["spacy_1ep_wall"] = json.loads(metrics.read_text())["tag_acc"], wall

    # 3. best dev UPOS within the wall-clock budget (evaluating every 200 steps on full dev, as spaCy's baseline)
    if not args.skip_budget:
        budget = {"paths.train": str(train), "paths.dev": str(dev), "training.max_epochs": 0, "training.eval_frequency": 200}
        print(f"budget {args.budget:.0f} s: archsweep ...", flush=True)
        rows, rss, _, _ = run(ours_cmd + ["--overrides", json.dumps(budget), "--wall-budget", str(args.budget)], one_thread)
        results["ours_budget_best"] = max(r["score"] for r in rows)
        results["ours_budget_last"] = rows[-1]["score"]
        results["ours_budget_epochs"] = rows[-1]["epoch"]
        results["ours_budget_rss"] = rss
        if args.spacy_budget:
            print(f"budget {args.budget:.0f} s: spaCy ...", flush=True)
            rows, rss, _, _ = run(spacy_cmd + ["--paths.train", str(spacy_train), "--paths.dev", str(spacy_dev)], one_thread, timeout=args.budget)
            results["spacy_budget"] = f"UPOS {max(r['score'] for r in rows) * 100:.2f} % best, {rows[-1]['score'] * 100:.2f} % last ({rss:.0f} MB peak)"
    write_results(results, args)
    print(json.dumps(results, indent=2, default=str))
    return 0


def _options(args) -> str:
    """The command-line options that differ from the defaults, as typed."""
    options = ""
    if args.speed_steps != 800:
        options += f" --speed-steps {args.speed_steps}"
    if args.skip_budget:
        options += " --skip-budget"
    elif args.budget != 600.0:
        options += f" --budget {args.budget:.0f}"
    if args.spacy_budget:
        options += " --spacy-budget"
    return options


def write_results(r: Dict[str, object], args) -> None:
    import spacy
    import thinc

    ratio_1t = r["ours_wps_1t"] / r["spacy_wps"]
    lines = [
        "## Tagger: archsweep vs spaCy 3.8",
        "",
        f"- Command: `.venv/bin/python bench/tagger.py{_options(args)}`" + ("" if _options(args) else " (`make bench`)"),
        f"- Date: {today()}; machine: {machine()}",
        f"- Versions: thinc {thinc.__version__}, spaCy {spacy.__version__}; no GPU",
        "- Data: full UD English-EWT v2.16 from ../shared/data (train 204,577 words, dev 25,147), gold tokens, UPOS labels.",
        "- Architecture: HashEmbedCNN.v1 96/4/2000/1/3 with subword features + Tagger.v1; Adam 0.001, L2 0.01, grad clip 1,",
        "  dropout 0.1. Both single-threaded: spaCy uses blis (one thread), archsweep pins OpenBLAS to one thread.",
        "",
        "| figure | archsweep | spaCy 3.8 | ratio |",
        "|---|---:|---:|---:|",
        f"| training words/s, 1000-word batches, one thread each | {r['ours_wps_1t']:,.0f} | {r['spacy_wps']:,.0f} | **{ratio_1t:.2f}x** |",
        f"| peak RSS of that training process | {r['ours_rss']:,.0f} MB | {r['spacy_rss']:,.0f} MB | {r['ours_rss'] / r['spacy_rss']:.2f}x |",
        f"| dev UPOS after exactly 1 epoch | {r['ours_1ep'] * 100:.2f} % ({r['ours_1ep_wall']:.0f} s wall) | "
        f"{r['spacy_1ep'] * 100:.2f} % ({r['spacy_1ep_wall']:.0f} s wall) | {(r['ours_1ep'] - r['spacy_1ep']) * 100:+.2f} points |",
    ]
    if "ours_budget_best" in r:
        spacy_budget = r.get("spacy_budget", PARITY_SPACY_BUDGET)
        lines.append(
            f"| best dev UPOS within {args.budget:.0f} s wall | {r['ours_budget_best'] * 100:.2f} % best, {r['ours_budget_last'] * 100:.2f} % last, "
            f"{r['ours_budget_epochs']} epochs, {r['ours_budget_rss']:,.0f} MB peak | {spacy_budget} | |"
        )
    lines += [
        "",
        "Words/s are steady-state training words per second between the first and last evaluation (archsweep",
        "excludes evaluation time; spaCy's figure, timed by its logger's clock, includes its small 20-doc dev",
        "evaluations every 100 steps, ~1 %).",
        "GPU words/s: not measured, no GPU on this machine (bench/gpu.py measures GPU speed).",
    ]
    write_section("tagger", lines)


if __name__ == "__main__":
    sys.exit(main())
