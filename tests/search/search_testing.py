"""Paths and helpers shared by the search package's tests (importable as a
plain module: pytest puts tests/search on sys.path)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
TAGGER_CFG = CONFIGS / "tagger.cfg"
MULTITASK_CFG = CONFIGS / "tagger_multitask.cfg"
DATA = REPO / "data" / "ud_english_ewt"
TRAIN = DATA / "en_ewt-ud-train.sample.conllu"
DEV = DATA / "en_ewt-ud-dev.sample.conllu"
# Absolute corpus paths, so the tests do not depend on the working directory.
PATHS = {"paths.train": str(TRAIN), "paths.dev": str(DEV)}
# The bundled GloVe sample, the spaces' paths.vectors, absolute for the same reason.
VECTORS = REPO / "data" / "vectors" / "glove.6B.50d.sample.txt"
ARCHSWEEP = Path(sys.executable).parent / "archsweep"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed `archsweep` console script from the repository root."""
    assert ARCHSWEEP.exists(), f"console script not installed: {ARCHSWEEP} (pip install -e .)"
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [str(ARCHSWEEP), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
