"""Why MiniLM training holds gigabytes: glibc's heap against mmap for large blocks, and the
transient memory of one update against the batch's padded span shape.

    .venv/bin/python bench/transformer_memory.py [--steps 60] [--batches 12]

Trains configs/transformer_tagger.cfg on full UD English-EWT (1000-word batches, one BLAS and
one torch thread) twice at the same time: with glibc's default allocator settings, and with
MALLOC_MMAP_THRESHOLD_=65536 (blocks of 64 KiB and more come from mmap and go back to the
system when freed). Reports each process's peak and final RSS and its training words per
CPU-second. Then, in one process with MALLOC_MMAP_THRESHOLD_=65536 (so that what an update
frees goes back), updates on --batches random 1000-word batches and on the batch whose spans pad
to the most wordpieces, each measured as the peak RSS during the update (VmHWM, reset before it
through /proc/self/clear_refs) minus the RSS before it. Needs archsweep[transformers] and
../shared/data/ud_english_ewt. Writes the `transformer-memory` section of bench/RESULTS.md.
"""

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archsweep_run import rss_mb  # noqa: E402
from parser import ONE_THREAD, cpu_words_per_second, run_in_threads  # noqa: E402
from results import machine, today, write_section  # noqa: E402
from tagger import EWT, PY, ROOT, run  # noqa: E402

CONFIG = ROOT / "configs" / "transformer_tagger.cfg"
SETTINGS = {"glibc default": {}, "MALLOC_MMAP_THRESHOLD_=65536": {"MALLOC_MMAP_THRESHOLD_": "65536"}}


def train_rows(steps: int, env: Dict[str, str]) -> List[dict]:
    overrides = {
        "paths.train": str(EWT / "en_ewt-ud-train.conllu"), "paths.dev": str(EWT / "en_ewt-ud-dev.conllu"),
        "corpora.dev.limit": 20, "training.max_epochs": 0, "training.max_steps": steps,
        "training.eval_frequency": 10, "training.batcher.size": 1000,
        "training.optimizer.learn_rate.total_steps": steps,
    }
    cmd = [PY, "bench/archsweep_run.py", str(CONFIG), "--overrides", json.dumps(overrides)]
    rows, _, _, _ = run(cmd, {**ONE_THREAD, **env})
    return rows


def transient_by_batch(n_batches: int) -> None:
    """(The child, with MALLOC_MMAP_THRESHOLD_ set.) One JSON line per measured update."""
    import torch
    from thinc.api import Adam, fix_random_seed

    from search.corpora.conllu import read_conllu
    from search.training.config import load_config
    from search.training.pipeline import Pipeline

    torch.set_num_threads(1)
    fix_random_seed(0)
    pipeline = Pipeline.from_config(load_config(CONFIG))
    examples = read_conllu(EWT / "en_ewt-ud-train.conllu")
    pipeline.initialize(examples)
    hf = next(node.attrs["hf"] for node in pipeline.tok2vecs[0].model.walk() if "hf" in node.attrs)
    batches, batch, words = [], [], 0
    for eg in examples:
        batch.append(eg)
        words += len(eg)
        if words >= 1000:
            batches.append(batch)
            batch, words = [], 0

    def padded_shape(batch):  # (spans, wordpieces per span after padding), as the layer tokenizes
        docs = [eg.doc for eg in batch]
        texts = [" ".join(doc.words[a:b]) for doc, spans in zip(docs, hf.get_spans(docs)) for a, b in spans if b > a]
        enc = hf.tokenizer(texts, padding="longest", truncation=True, max_length=hf.max_length)
        return len(texts), len(enc["input_ids"][0])

    rng = random.Random(0)
    longest = max(range(len(batches)), key=lambda i: padded_shape(batches[i])[1])
    optimizer = Adam(0.0005)
    for i in [rng.randrange(len(batches)) for _ in range(n_batches)] + [longest]:
        spans, length = padded_shape(batches[i])
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = rss_mb("VmRSS")
        pipeline.update(batches[i], drop=0.1, sgd=optimizer)
        print("BATCH " + json.dumps({"spans": spans, "length": length, "transient_mb": rss_mb("VmHWM") - before}),
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="training steps of 1000 words per run")
    parser.add_argument("--batches", type=int, default=12, help="random batches whose update memory is measured")
    parser.add_argument("--transient-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.transient_child:
        transient_by_batch(args.batches)
        return 0
    if not (EWT / "en_ewt-ud-train.conllu").exists():
        print(f"{EWT} not found: this benchmark needs ../shared/data beside the checkout")
        return 2
    results: Dict[str, List[dict]] = {}
    if run_in_threads(list(SETTINGS), lambda name: results.__setitem__(name, train_rows(args.steps, SETTINGS[name]))):
        return 1
    lines = [
        "## MiniLM training memory: glibc heap against mmap",
        "",
        f"- Command: `.venv/bin/python bench/transformer_memory.py --steps {args.steps}`",
        f"- Date: {today()}; machine: {machine()}.",
        f"- configs/transformer_tagger.cfg on full EWT, {args.steps} steps of 1000 words, both runs at the same time, "
        "one BLAS and one torch thread each; RSS read at each evaluation (every 10 steps).",
        "",
        "| allocator setting | RSS at step 10 | RSS at the last step | peak RSS | training words per CPU-second |",
        "|---|---:|---:|---:|---:|",
    ]
    base = cpu_words_per_second(results["glibc default"])
    for name in SETTINGS:
        rows = results[name]
        wps = cpu_words_per_second(rows)
        lines.append(f"| {name} | {rows[0]['rss_mb']:,.0f} MB | {rows[-1]['rss_mb']:,.0f} MB | "
                     f"{max(r['peak_mb'] for r in rows):,.0f} MB | {wps:,.0f} ({wps / base:.2f}x) |")
    child = subprocess.run([PY, __file__, "--transient-child", "--batches", str(args.batches)], cwd=ROOT, check=True,
                           env={**ONE_THREAD, **SETTINGS["MALLOC_MMAP_THRESHOLD_=65536"]}, capture_output=True, text=True)
    rows = [json.loads(line[6:]) for line in child.stdout.splitlines() if line.startswith("BATCH ")]
    lines += [
        "",
        f"Memory one update takes on top of the steady RSS ({args.batches} random 1000-word batches, then the batch "
        "whose spans pad to the most wordpieces; MALLOC_MMAP_THRESHOLD_=65536, so freed blocks go back):",
        "",
        "| spans in the batch | wordpieces per span (padded) | spans x length^2 (millions) | transient RSS |",
        "|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: r["spans"] * r["length"] ** 2):
        lines.append(f"| {row['spans']} | {row['length']} | {row['spans'] * row['length'] ** 2 / 1e6:.2f} | "
                     f"{row['transient_mb']:,.0f} MB |")
    write_section("transformer-memory", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
