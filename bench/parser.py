"""Parser benchmark: archsweep against spaCy 3.8 with the same architecture
(HashEmbedCNN 96/4/2000/1/3 + TransitionBasedParser.v1, nF 8, hidden 64, pieces 2),
data (full UD English-EWT from ../shared/data) and hyperparameters, in one run.

    .venv/bin/python bench/parser.py [--speed-steps 300]

Measures: training words/s at 1000-word batches (ratio to spaCy) and peak memory;
dev UAS/LAS (punctuation excluded, spaCy's scorer) after exactly one epoch, both.
Writes its section of bench/RESULTS.md.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine, today, write_section  # noqa: E402
from tagger import CACHE, EWT, PY, ROOT, run, steady_words_per_second  # noqa: E402

CONFIG = ROOT / "configs" / "parser.cfg"
SPACY_CONFIG = ROOT / "bench" / "spacy_parser.cfg"
SPACY_LOGGER = ROOT / "bench" / "spacy_wps_logger.py"


def make_docbins() -> Tuple[Path, Path]:
    """EWT as spaCy DocBins with heads and labels, 10 sentences per Doc (parity.md §3.1)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = (CACHE / "train.deps.spacy", CACHE / "dev.deps.spacy")
    if all(p.exists() for p in paths):
        return paths
    from spacy.lang.en import English
    from spacy.tokens import Doc, DocBin

    from search.corpus import read_conllu

    vocab = English().vocab
    for split, out in zip(("train", "dev"), paths):
        examples = read_conllu(EWT / f"en_ewt-ud-{split}.conllu")
        db = DocBin(attrs=["ORTH", "HEAD", "DEP", "SENT_START"])
        for i in range(0, len(examples), 10):
            group = examples[i : i + 10]
            words, heads, deps, starts, offset = [], [], [], [], 0
            for eg in group:
                n = len(eg)
                words += eg.doc.words
                heads += [offset + (h if h is not None and h >= 0 else j) for j, h in enumerate(eg.gold["heads"])]
                deps += [d or "dep" for d in eg.gold["deps"]]
                starts += [j == 0 for j in range(n)]
                offset += n
            db.add(Doc(vocab, words=words, heads=heads, deps=deps, sent_starts=starts))
        db.to_disk(out)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed-steps", type=int, default=300)
    args = parser.parse_args()
    if not EWT.exists():
        print(f"full UD English-EWT not found at {EWT}: this benchmark needs ../shared/data beside the checkout")
        return 2
    train, dev = EWT / "en_ewt-ud-train.conllu", EWT / "en_ewt-ud-dev.conllu"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    spacy_train, spacy_dev = make_docbins()
    spacy_cmd = [PY, "-m", "spacy", "train", str(SPACY_CONFIG), "--code", str(SPACY_LOGGER)]
    ours_cmd = [PY, "bench/archsweep_run.py", str(CONFIG)]
    r: Dict[str, float] = {}

    print("speed: spaCy ...", flush=True)
    rows, r["spacy_rss"], _, _ = run(spacy_cmd + [
        "--paths.train", str(spacy_train), "--paths.dev", str(spacy_dev), "--corpora.dev.limit", "20",
        "--training.max_steps", str(args.speed_steps), "--training.eval_frequency", "100",
        "--training.batcher.size.start", "1000"], env)
    r["spacy_wps"] = steady_words_per_second(rows)
    print("speed: archsweep ...", flush=True)
    speed = {"paths.train": str(train), "paths.dev": str(dev), "corpora.dev.limit": 200, "training.max_epochs": 0,
             "training.max_steps": args.speed_steps, "training.eval_frequency": 100, "training.batcher.size.start": 1000}
    rows, r["ours_rss"], _, _ = run(ours_cmd + ["--overrides", json.dumps(speed)], env)
    r["ours_wps"] = steady_words_per_second(rows)

    print("one epoch: archsweep ...", flush=True)
    one_epoch = {"paths.train": str(train), "paths.dev": str(dev), "training.max_epochs": 1, "training.eval_frequency": 10**9}
    rows, _, r["ours_1ep_wall"], _ = run(ours_cmd + ["--overrides", json.dumps(one_epoch)], env)
    r["ours_uas"], r["ours_las"] = rows[-1]["scores"]["dep_uas"], rows[-1]["scores"]["dep_las"]
    print("one epoch: spaCy ...", flush=True)
    out = CACHE / "spacy_parser_1ep"
    _, _, r["spacy_1ep_wall"], _ = run(spacy_cmd + [
        "--paths.train", str(spacy_train), "--paths.dev", str(spacy_dev), "--training.max_epochs", "1",
        "--training.eval_frequency", "100000", "-o", str(out)], env)
    metrics = CACHE / "spacy_parser_1ep.json"
    subprocess.run([PY, "-m", "spacy", "evaluate", str(out / "model-last"), str(spacy_dev), "--gold-preproc",
                    "--output", str(metrics)], cwd=ROOT, env=env, check=True, capture_output=True)
    spacy_scores = json.loads(metrics.read_text())
    r["spacy_uas"], r["spacy_las"] = spacy_scores["dep_uas"], spacy_scores["dep_las"]
    write(r, args)
    print(json.dumps(r, indent=2))
    return 0


def write(r: Dict[str, float], args) -> None:
    import spacy
    import thinc

    lines = [
        "## Parser: archsweep vs spaCy 3.8 (issue 4, first figures)",
        "",
        f"- Command: `.venv/bin/python bench/parser.py --speed-steps {args.speed_steps}`",
        f"- Date: {today()}; machine: {machine()}",
        f"- Versions: thinc {thinc.__version__}, spaCy {spacy.__version__}; no GPU; both single-threaded",
        "- Data: full UD English-EWT v2.16 (../shared/data), gold tokens; spaCy reads 10 sentences per Doc, archsweep one.",
        "- Architecture: HashEmbedCNN.v1 96/4/2000/1/3 + TransitionBasedParser.v1 (nF 8, hidden 64, pieces 2, upper),",
        "  min_action_freq 30, oracle cut 100; Adam 0.001, L2 0.01, grad clip 1, dropout 0.1.",
        "",
        "| figure | archsweep | spaCy 3.8 | ratio |",
        "|---|---:|---:|---:|",
        f"| training words/s, 1000-word batches | {r['ours_wps']:,.0f} | {r['spacy_wps']:,.0f} | **{r['ours_wps'] / r['spacy_wps']:.2f}x** |",
        f"| peak RSS of that training process | {r['ours_rss']:,.0f} MB | {r['spacy_rss']:,.0f} MB | {r['ours_rss'] / r['spacy_rss']:.2f}x |",
        f"| dev UAS / LAS after exactly 1 epoch (punct excluded) | {r['ours_uas'] * 100:.2f} / {r['ours_las'] * 100:.2f} ({r['ours_1ep_wall']:.0f} s wall) | "
        f"{r['spacy_uas'] * 100:.2f} / {r['spacy_las'] * 100:.2f} ({r['spacy_1ep_wall']:.0f} s wall) | {(r['ours_las'] - r['spacy_las']) * 100:+.2f} LAS |",
        "",
        "Not yet measured: best within 10 minutes and at convergence, test-set and CoNLL-2018 (punctuation included)",
        "figures, inference speed, NER, GPU.",
    ]
    write_section("parser", lines)


if __name__ == "__main__":
    sys.exit(main())
