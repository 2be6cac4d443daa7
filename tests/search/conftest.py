"""Fixtures for the search package's tests: one short real training run shared by several tests."""

import os

# One BLAS thread (set before numpy is first imported, when tests/search runs
# alone; an explicit setting wins): the models are small, and on a 2-core
# machine OpenBLAS's worker threads compete with everything else running
# (training ran 4x slower under load). The CLI subprocesses get it too.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402
from typing import List  # noqa: E402

import pytest  # noqa: E402
from search_testing import PATHS, TAGGER_CFG  # noqa: E402

# Session-scoped Ray cluster, MLflow server and finished sweep (started only by
# the tests that ask for them: test_sweep.py, test_export.py).
from sweep_fixtures import cli_sweep, finished_sweep, mlflow_server, ray_cluster  # noqa: E402,F401


class TrainedTagger:
    def __init__(self, result, rows: List, output_dir: Path) -> None:
        self.result = result
        self.rows = rows
        self.output_dir = output_dir


@pytest.fixture(scope="session")
def trained_tagger(tmp_path_factory) -> TrainedTagger:
    """configs/tagger.cfg trained for 40 steps on the full train sample,
    evaluated every 20 steps on the dev sample, saved to a directory."""
    from search.training.loop import train

    out = tmp_path_factory.mktemp("tagger") / "run"
    rows: List = []
    result = train(
        TAGGER_CFG,
        out,
        overrides={**PATHS, "training.max_steps": 40, "training.eval_frequency": 20},
        on_evaluation=rows.append,
    )
    return TrainedTagger(result, rows, out)
