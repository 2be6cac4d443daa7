"""`archsweep evaluate` on what is not quite a saved model (search/training/evaluate.py
`saved_model_dir`, search/training/pipeline.py `load_pipeline`): a training run's own
folder means its model-best/ (said in one stderr line); a folder that is no
model, or a model missing labels.json or a component's .bin, is one error line
naming model-best/ or the missing file. A real tiny training run and real CLI
subprocesses."""

import json
import re
import shutil
from pathlib import Path
from typing import Callable, Dict

import pytest
from search_testing import DEV, PATHS, TAGGER_CFG, run_cli

from search.training.evaluate import evaluate
from search.training.loop import train
from search.training.pipeline import load_pipeline

# A few steps on a few sentences: a saved model in seconds.
TINY = {**PATHS, "corpora.train.limit": 40, "corpora.dev.limit": 20, "training.max_steps": 4, "training.eval_frequency": 2}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A training run's output folder: config.cfg, model-best/, model-last/, scores.json."""
    out = tmp_path_factory.mktemp("evaluate") / "run"
    train(TAGGER_CFG, out, overrides=TINY)
    assert (out / "model-best" / "labels.json").is_file()
    return out


def test_a_training_runs_folder_is_evaluated_by_its_model_best(run_dir: Path):
    proc = run_cli("evaluate", str(run_dir), str(DEV))
    assert proc.returncode == 0, proc.stderr
    best = run_cli("evaluate", str(run_dir / "model-best"), str(DEV))
    assert best.returncode == 0, best.stderr
    # One line more than evaluating model-best/ itself logs (e.g. the corpus read).
    said = f"{run_dir} is a training run's folder: evaluating its {run_dir / 'model-best'}"
    assert proc.stderr.splitlines() == [said, *best.stderr.splitlines()]
    accuracy = re.compile(r"^\s+pos_acc\s+\S+$", re.M)
    assert accuracy.findall(proc.stdout) == accuracy.findall(best.stdout) != []
    assert evaluate(run_dir, DEV)["pos_acc"] == evaluate(run_dir / "model-best", DEV)["pos_acc"]


def _without_model_best(run: Path, into: Path) -> Path:
    shutil.copytree(run, into, ignore=shutil.ignore_patterns("model-best"))
    return into


def _without(name: str) -> Callable[[Path, Path], Path]:
    def broken(run: Path, into: Path) -> Path:
        shutil.copytree(run / "model-best", into)
        (into / name).unlink()
        return into

    return broken


def _with_labels(text: str) -> Callable[[Path, Path], Path]:
    def broken(run: Path, into: Path) -> Path:
        shutil.copytree(run / "model-best", into)
        (into / "labels.json").write_text(text)
        return into

    return broken


def _truncated_bin(run: Path, into: Path) -> Path:
    shutil.copytree(run / "model-best", into)
    (into / "tagger.bin").write_bytes((run / "model-best" / "tagger.bin").read_bytes()[:100])
    return into


def _empty(run: Path, into: Path) -> Path:
    into.mkdir()
    return into


GIVE = "give a training run's model-best/ or model-last/"
NOT_COMPLETE = "error: {dir}/labels.json: missing: {dir} is not a complete saved model; " + GIVE

# case: (how to make the broken folder from the run, the error line with {dir} for it)
CASES: Dict[str, tuple] = {
    "run without model-best": (
        _without_model_best, NOT_COMPLETE,
    ),
    "empty folder": (
        _empty,
        "error: {dir} is not a saved model directory (no config.cfg); " + GIVE,
    ),
    "no such folder": (
        lambda run, into: into,
        "error: {dir} is not a saved model directory (no such directory); " + GIVE,
    ),
    "model without labels.json": (
        _without("labels.json"), NOT_COMPLETE,
    ),
    "model without its .bin": (
        _without("tagger.bin"),
        "error: {dir}/tagger.bin: missing: the saved model has no weights for its component 'tagger'",
    ),
    "truncated .bin": (
        _truncated_bin,
        "error: {dir}/tagger.bin: not the weights of component 'tagger' as configured (",
    ),
    "labels.json that is not JSON": (
        _with_labels("{not json"),
        "error: {dir}/labels.json: not the labels of a saved model (Expecting property name enclosed in double quotes",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_model_folder_is_one_error_naming_what_is_missing(case: str, run_dir: Path, tmp_path: Path):
    make, expected = CASES[case]
    broken = make(run_dir, tmp_path / "model")
    proc = run_cli("evaluate", str(broken), str(DEV))
    assert proc.returncode == 1, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(expected.format(dir=broken)), lines[0]
    with pytest.raises((FileNotFoundError, ValueError)) as err:
        load_pipeline(broken)
    assert f"error: {err.value}" == lines[0]


def test_labels_json_is_read_as_saved(run_dir: Path):
    # The checks above read labels.json once, as before: the loaded pipeline still has its labels.
    pipeline, _ = load_pipeline(run_dir / "model-best")
    saved = json.loads((run_dir / "model-best" / "labels.json").read_text())
    assert {name: c.label_data for name, c in pipeline.components.items()} == saved
