"""spaCy logger for bench/textcat.py: one JSON row per evaluation with training words,
spaCy's training seconds, wall seconds and the process's CPU seconds (time.process_time)."""

import json
import sys
import time

from spacy.util import registry


@registry.loggers("archsweep_textcat_logger.v1")
def textcat_logger():
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
                "cpu": time.process_time(),
                "score": float(info["score"]),
            }
            stdout.write("ROW " + json.dumps(row) + "\n")
            stdout.flush()

        return log_step, lambda: None

    return setup
