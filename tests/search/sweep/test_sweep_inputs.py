"""Malformed inputs never start a sweep: a bad space, a missing data file, an
unreadable vectors file and an unknown architecture name each fail on the driver,
through the `archsweep sweep` command, with one clear message, before any trial or
MLflow run exists."""

import os
import signal
import subprocess
from pathlib import Path
from typing import List

import pytest
from confection import Config
from search_testing import PATHS, VECTORS
from sweep_fixtures import ARCHSWEEP, FAST, SPACE, cli_overrides, subprocess_env

from search.space import DIST_KEY


def _space(tmp_path: Path, edit) -> Path:
    config = Config().from_disk(SPACE, interpolate=False)
    config["paths"].update({"train": PATHS["paths.train"], "dev": PATHS["paths.dev"], "vectors": str(VECTORS)})
    edit(config)
    path = tmp_path / "space.cfg"
    path.write_text(config.to_str())
    return path


def _tok2vec(config):
    return config["components"]["tagger"]["model"]["tok2vec"]


def _bad_range(config):
    config["training"]["optimizer"]["learn_rate"] = {DIST_KEY: "loguniform.v1", "low": 0.01, "high": 0.001}


def _bad_choice_value(config):
    config["training"]["dropout"] = {DIST_KEY: "choice.v1", "values": [0.1, "abc", 0.2]}


def _missing_data(config):
    config["paths"]["dev"] = "/nonexistent/dev.conllu"


def _unknown_architecture(config):
    _tok2vec(config)["@architectures"] = "spacy.HashEmbedCNN.v9"


def _unreadable_vectors(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("<html>not a vectors table</html>\n")

    def edit(config):
        _tok2vec(config)["pretrained_vectors"] = str(vectors)

    return edit


def _unchanged(config):
    pass


# case: (the space's edit, given tmp_path; what the error names; extra command-line arguments)
CASES = {
    "bad space": (lambda tmp: _bad_range, ["training.optimizer.learn_rate", "low"], []),
    "bad choice value": (lambda tmp: _bad_choice_value, ["training.dropout", 'choice value "abc" is invalid'], []),
    "missing data file": (lambda tmp: _missing_data, ["paths.dev", "data file not found", "/nonexistent/dev.conllu"], []),
    "unknown architecture": (lambda tmp: _unknown_architecture, ["spacy.HashEmbedCNN.v9"], []),
    "unreadable vectors": (_unreadable_vectors, ["pretrained_vectors", "unreadable vectors table", "vectors.txt:1"], []),
    "unknown ASHA time attribute": (lambda tmp: _unchanged, ["--time-attr", "evaluations or epochs", "'steps'"], ["--time-attr", "steps"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_fails_on_the_driver(case, ray_cluster, tmp_path):
    make_edit, expected, extra_args = CASES[case]
    space = _space(tmp_path, make_edit(tmp_path))
    overrides = {k: v for k, v in FAST.items() if not k.startswith(("paths.", "components."))}
    args: List[str] = [
        str(ARCHSWEEP), "sweep", str(space), "--num-samples", "2", "--address", ray_cluster.address,
        "--storage", str(tmp_path / "sweeps"), *extra_args, *cli_overrides(overrides),
    ]
    proc = subprocess.Popen(args, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        pytest.fail(f"archsweep sweep did not fail within 180 s ({case})")
    assert proc.returncode == 1, (out, err[-3000:])
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: "), err[-3000:]
    for part in expected:
        assert part in err, (part, err[-3000:])
    assert "Traceback" not in err
    # nothing started: no trial folder, no MLflow run
    assert not list((tmp_path / "sweeps").glob("*/trial_*"))
    if (tmp_path / "mlflow.db").exists():
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
