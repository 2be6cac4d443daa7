"""spaCy logger for the benchmark (after ../shared/spacy-baseline/wps_logger.py):
one JSON row per evaluation with training words, seconds and scores."""

import json
import sys
import time

from spacy.util import registry


@registry.loggers("archsweep_bench_logger.v1")
def bench_logger():
    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        start = time.perf_counter()

        def log_step(info):
            if info is None:
                return
            row = {
                "epoch": info["epoch"],
                "step": info["step"],
                "words": info["words"],
                "seconds": info["seconds"],
                "wall": time.perf_counter() - start,
                "score": float(info["score"]),
            }
            stdout.write("ROW " + json.dumps(row) + "\n")
            stdout.flush()

        return log_step, lambda: None

    return setup
