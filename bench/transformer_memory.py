"""Why MiniLM training holds gigabytes: glibc's heap against mmap for large blocks.

    .venv/bin/python bench/transformer_memory.py [--steps 60]

Trains configs/transformer_tagger.cfg on full UD English-EWT (1000-word batches, one BLAS and
one torch thread) twice at the same time: with glibc's default allocator settings, and with
MALLOC_MMAP_THRESHOLD_=65536 (blocks of 64 KiB and more come from mmap and go back to the
system when freed). Reports each process's peak and final RSS and its training words per
CPU-second. Needs archsweep[transformers] and ../shared/data/ud_english_ewt. Writes the
`transformer-memory` section of bench/RESULTS.md.
"""

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parser import ONE_THREAD, cpu_words_per_second  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="training steps of 1000 words per run")
    args = parser.parse_args()
    if not (EWT / "en_ewt-ud-train.conllu").exists():
        print(f"{EWT} not found: this benchmark needs ../shared/data beside the checkout")
        return 2
    results: Dict[str, List[dict]] = {}
    threads = [threading.Thread(target=lambda n=name, e=env: results.__setitem__(n, train_rows(args.steps, e)))
               for name, env in SETTINGS.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if set(results) != set(SETTINGS):
        print("a run failed (see above)")
        return 1
    lines = [
        "## MiniLM training memory: glibc heap against mmap (issue 9)",
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
    write_section("transformer-memory", lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
