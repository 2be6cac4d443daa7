"""Training output folders: a second run into a folder that holds one is refused unless
--overwrite, and a run that fails never leaves a mix of two runs."""

import json

import pytest
from search_testing import PATHS, TAGGER_CFG, run_cli

from search.corpora.example import CorpusError
from search.training.config import ConfigError
from search.training.loop import train
from search.training.run_output import RUN_FILES, staging_path

SHORT = {**PATHS, "training.max_steps": 4, "training.eval_frequency": 2}


def _snapshot(out):
    return {name: sorted(p.name for p in (out / name).iterdir()) if (out / name).is_dir() else (out / name).read_bytes()
            for name in RUN_FILES}


@pytest.fixture
def first_run(tmp_path):
    out = tmp_path / "run"
    train(TAGGER_CFG, out, overrides={**SHORT, "training.seed": 1})
    return out


def test_a_finished_run_has_every_file_and_no_staging_folder(first_run):
    assert all((first_run / name).exists() for name in RUN_FILES)
    assert not staging_path(first_run).exists()


def test_a_second_run_is_refused_before_it_starts(first_run):
    before = _snapshot(first_run)
    with pytest.raises(ConfigError, match=r"holds a training run already .*--overwrite"):
        train(TAGGER_CFG, first_run, overrides=SHORT)
    assert _snapshot(first_run) == before


def test_a_failed_run_leaves_the_previous_one_as_it_was(first_run, tmp_path):
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tword\n", encoding="utf8")  # fails while the corpora are read, after the run began
    before = _snapshot(first_run)
    with pytest.raises(CorpusError):
        train(TAGGER_CFG, first_run, overrides={**SHORT, "paths.dev": str(bad)}, overwrite=True)
    assert _snapshot(first_run) == before
    assert not staging_path(first_run).exists()


def test_a_stopped_run_leaves_the_previous_one_as_it_was(first_run):
    before = _snapshot(first_run)

    def interrupt(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TAGGER_CFG, first_run, overrides=SHORT, on_evaluation=interrupt, overwrite=True)
    assert _snapshot(first_run) == before and not staging_path(first_run).exists()


def test_overwrite_replaces_the_whole_run_and_keeps_other_files(first_run):
    (first_run / "notes.txt").write_text("mine", encoding="utf8")
    old_scores = json.loads((first_run / "scores.json").read_text(encoding="utf8"))
    result = train(TAGGER_CFG, first_run, overrides={**SHORT, "training.max_steps": 6, "training.seed": 2}, overwrite=True)
    scores = json.loads((first_run / "scores.json").read_text(encoding="utf8"))
    assert result.output_dir == first_run
    assert scores["history"][-1]["step"] == 6 != old_scores["history"][-1]["step"]
    assert "max_steps = 6" in (first_run / "config.cfg").read_text(encoding="utf8")
    assert "max_steps = 6" in (first_run / "model-last" / "config.cfg").read_text(encoding="utf8")
    assert (first_run / "notes.txt").read_text(encoding="utf8") == "mine"
    assert not staging_path(first_run).exists()


def test_the_cli_refuses_a_second_run_in_one_line(first_run):
    args = [arg for key, value in SHORT.items() for arg in (f"--{key}", str(value))]
    proc = run_cli("train", str(TAGGER_CFG), "--output", str(first_run), *args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--overwrite" in errors[0] and str(first_run) in errors[0]
    proc = run_cli("train", str(TAGGER_CFG), "--output", str(first_run), "--overwrite", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
