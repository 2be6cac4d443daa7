"""Bad input, as a user would give it to `archsweep train` / `debug model`: every row
ends in exactly one `error:` line naming the dotted key or file:line and what was
expected, exit code 1, and no traceback; nothing is silently accepted."""

import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List

import pytest
from search_testing import DEV, PATHS, REPO, TAGGER_CFG, TRAIN, run_cli

from search.training.config import ConfigError, load_config

SHORT = ["--training.max_steps", "4", "--training.eval_frequency", "2"]


def _binary(tmp: Path) -> Path:
    path = tmp / "binary.conllu"
    path.write_bytes(b"1\tThe\x00\x01\x02\x7fELF" * 50)
    return path


def _directory(tmp: Path) -> Path:
    path = tmp / "folder.conllu"
    path.mkdir()
    return path


def _latin1(tmp: Path) -> Path:
    """The dev sample with one Latin-1 byte (an e-acute) on line 6."""
    data = DEV.read_bytes()
    lines = data.split(b"\n")
    cols = lines[5].split(b"\t")
    cols[1] += b"\xe9"  # the FORM column
    lines[5] = b"\t".join(cols)
    path = tmp / "latin1.conllu"
    path.write_bytes(b"\n".join(lines))
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.conllu"
    path.write_text("", encoding="utf8")
    return path


def _no_xpos(tmp: Path) -> Path:
    lines = []
    for line in TRAIN.read_text(encoding="utf8").split("\n"):
        cols = line.split("\t")
        if len(cols) == 10:
            cols[4] = "_"
        lines.append("\t".join(cols))
    path = tmp / "no_xpos.conllu"
    path.write_text("\n".join(lines), encoding="utf8")
    return path


def _uneven_vectors(tmp: Path) -> Path:
    path = tmp / "vectors.txt"
    path.write_text("the 0.1 0.2 0.3\ncat 0.4 0.5\n", encoding="utf8")
    return path


def _wide_config(tmp: Path) -> Path:
    path = tmp / "tagger.cfg"
    path.write_text(TAGGER_CFG.read_text(encoding="utf8").replace("width = 96", "width = -64"), encoding="utf8")
    return path


# (id, arguments after the command, files to make: {placeholder: maker}, fragments of the error line)
Row = tuple
CASES: List[Row] = [
    ("width negative", ["--components.tagger.model.tok2vec.width", "-64"], {},
     ["components.tagger.model.tok2vec.width", "expected an integer > 0", "-64"]),
    ("width zero", ["--components.tagger.model.tok2vec.width", "0"], {},
     ["components.tagger.model.tok2vec.width", "> 0"]),
    ("depth negative", ["--components.tagger.model.tok2vec.depth", "-1"], {},
     ["components.tagger.model.tok2vec.depth", "> 0"]),
    ("embed dropout out of range", ["--components.tagger.model.tok2vec.dropout", "1.5"], {},
     ["components.tagger.model.tok2vec.dropout", "< 1.0"]),
    ("dropout not a number", ["--training.dropout", "abc"], {}, ["training.dropout", "number", "'abc'"]),
    ("max_steps not a number", ["--training.max_steps", "twenty"], {}, ["training.max_steps", "integer", "'twenty'"]),
    ("eval_frequency not a number", ["--training.eval_frequency", "often"], {}, ["training.eval_frequency", "integer"]),
    ("dropout 1.5", ["--training.dropout", "1.5"], {}, ["training.dropout", "less than 1", "1.5"]),
    ("eval_frequency negative", ["--training.eval_frequency", "-5"], {}, ["training.eval_frequency", "greater than 0"]),
    ("max_steps negative", ["--training.max_steps", "-1"], {}, ["training.max_steps", "greater than or equal to 0"]),
    ("batch_size zero", ["--nlp.batch_size", "0"], {}, ["nlp.batch_size", "greater than 0"]),
    ("unknown allocator", ["--system.gpu_allocator", "cupy"], {}, ["system.gpu_allocator", "'pytorch' or 'tensorflow'"]),
    ("typo in a path key", ["--paths.trian", "x.conllu"], {}, ["--paths.trian", "no such setting", "[paths] has: dev, train"]),
    ("typo in a training key", ["--training.max_step", "5"], {}, ["--training.max_step", "no such setting", "max_steps"]),
    ("unknown section", ["--trainig.max_steps", "5"], {}, ["--trainig.max_steps", "no such setting", "training"]),
    ("binary corpus", ["--paths.train", "{binary}"], {"binary": _binary}, ["binary.conllu:1:", "binary file"]),
    ("directory as corpus", ["--paths.train", "{folder}"], {"folder": _directory}, ["folder.conllu: is a directory"]),
    ("Latin-1 byte in the corpus", ["--paths.train", "{latin1}"], {"latin1": _latin1},
     ["latin1.conllu:6: not valid utf8", "encoding"]),
    ("missing corpus", ["--paths.train", "{tmp}/nowhere.conllu"], {}, ["corpus file not found", "nowhere.conllu"]),
    ("unknown label attribute", ["--components.tagger.label_attr", "upsos"], {},
     ["components.tagger.label_attr", "'upos', 'xpos'", "'upsos'"]),
    ("empty dev corpus", ["--paths.dev", "{empty}"], {"empty": _empty}, ["corpora.dev", "dev corpus is empty"]),
    ("no labels for the component", ["--components.tagger.label_attr", "xpos", "--paths.train", "{no_xpos}"],
     {"no_xpos": _no_xpos}, ["components.tagger", "no xpos annotation"]),
    ("vectors of uneven width", ["--components.tagger.model.tok2vec.pretrained_vectors", "{vectors}"],
     {"vectors": _uneven_vectors}, ["vectors.txt:2:", "expected a word and 3 numbers"]),
    ("architecture from another version", ["--components.tagger.model.tok2vec.@architectures", "spacy.HashEmbedCNN.v9"], {},
     ["components.tagger.model.tok2vec.@architectures", "spacy.HashEmbedCNN.v9", "has spacy.HashEmbedCNN.v1"]),
]


def _materialise(args: List[str], makers: Dict[str, Callable[[Path], Path]], tmp: Path) -> List[str]:
    values = {name: str(make(tmp)) for name, make in makers.items()}
    values["tmp"] = str(tmp)
    return [arg.format(**values) for arg in args]


def _assert_one_error_line(proc, fragments: List[str]) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


def _path_args() -> List[str]:
    return [arg for key, value in PATHS.items() for arg in (f"--{key}", value)]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_train_gives_one_clear_error_line(case, tmp_path):
    _, args, makers, fragments = case
    args = _materialise(args, makers, tmp_path)
    proc = run_cli("train", str(TAGGER_CFG), *_path_args(), *SHORT, *args)
    _assert_one_error_line(proc, fragments)


@pytest.mark.parametrize("args, fragments", [
    (["--components.tagger.model.tok2vec.width", "-64"], ["components.tagger.model.tok2vec.width", "> 0"]),
    (["--components.tagger.model.tok2vec.depth", "-1"], ["components.tagger.model.tok2vec.depth", "> 0"]),
    (["--paths.trian", "x"], ["--paths.trian"]),
])
def test_debug_model_gives_one_clear_error_line(args, fragments):
    proc = run_cli("debug", "model", str(TAGGER_CFG), *_path_args(), *args)
    _assert_one_error_line(proc, fragments)


def test_a_bad_width_in_the_config_file_names_its_key(tmp_path):
    proc = run_cli("train", str(_wide_config(tmp_path)), *_path_args(), *SHORT)
    _assert_one_error_line(proc, ["components.tagger.model.tok2vec.width", "-64"])


def test_a_space_given_to_train_points_to_sweep():
    space = REPO / "spaces" / "tagger.cfg"
    proc = run_cli("train", str(space))
    _assert_one_error_line(proc, ["search space", f"archsweep sweep {space}"])


def test_a_latin1_corpus_reads_with_its_encoding(tmp_path):
    latin1 = _latin1(tmp_path)
    proc = run_cli("train", str(TAGGER_CFG), *_path_args(), *SHORT, "--paths.train", str(latin1),
                   "--corpora.train.encoding", "latin-1")
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("overrides", [
    {"training.max_steps": 20},
    {"training.batcher.size": 8000},  # a schedule block replaced by a fixed size
    {"components.tagger.model.tok2vec.width": 64, "paths.train": str(TRAIN)},
    {"components.tagger.model.tok2vec.dropout": 0.2},  # a default filled in, not written in the file
])
def test_valid_overrides_are_accepted(overrides):
    load_config(TAGGER_CFG, overrides)


def test_overrides_do_not_change_the_callers_config():
    base = load_config(TAGGER_CFG)
    text = base.to_str()
    with pytest.raises(ConfigError):
        load_config(TAGGER_CFG, {"components.tagger.model.tok2vec.width": -1})
    assert base.to_str() == text


@pytest.mark.parametrize("command", ["space", "sweep"])
def test_a_space_override_of_an_unknown_setting_is_refused(command, tmp_path):
    space = REPO / "spaces" / "tagger.cfg"
    args = ["--storage", str(tmp_path / "sweeps"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"] if command == "sweep" else []
    proc = run_cli(command, str(space), *args, "--paths.trian", "x.conllu")
    _assert_one_error_line(proc, ["--paths.trian", "no such setting", "[paths] has: dev, train"])
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "sweeps").exists()


def test_evaluating_on_labels_the_model_never_saw_says_so(trained_tagger, tmp_path):
    lines = []
    for line in DEV.read_text(encoding="utf8").split("\n"):
        cols = line.split("\t")
        if len(cols) == 10 and cols[3] == "PROPN":
            cols[3] = "NEWTAG"
        lines.append("\t".join(cols))
    corpus = tmp_path / "dev.conllu"
    corpus.write_text("\n".join(lines), encoding="utf8")
    proc = run_cli("evaluate", str(trained_tagger.output_dir / "model-best"), str(corpus))
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "NEWTAG" in warnings[0] and "components.tagger" in warnings[0], proc.stderr
    assert "pos_acc" in proc.stdout
    proc = run_cli("evaluate", str(trained_tagger.output_dir / "model-best"), str(DEV))
    assert "warning:" not in proc.stderr


@pytest.mark.parametrize("overrides, fragments", [
    ({"training.batcher.size": -5}, ["training.batcher.size", "> 0", "-5"]),
    ({"training.batcher.size.start": -100}, ["training.batcher.size", "at least 1 word", "-100", "step 0"]),
    ({"training.batcher.tolerance": -1}, ["training.batcher.tolerance", ">= 0"]),
    ({"training.optimizer.learn_rate": -0.001}, ["training.optimizer.learn_rate", "> 0"]),
])
def test_batch_sizes_and_learning_rates_are_checked(overrides, fragments):
    with pytest.raises(ConfigError) as err:
        load_config(TAGGER_CFG, overrides)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


def test_an_unexpected_error_keeps_its_traceback_and_says_it_is_a_bug(tmp_path):
    """What archsweep does not expect is not dressed up as a user error."""
    script = tmp_path / "crash.py"
    script.write_text(
        "import sys\n"
        "import search.cli as cli\n"
        "@cli.app.command('crash')\n"
        "def crash() -> None:\n"
        "    raise RuntimeError('an internal inconsistency')\n"
        "sys.argv = ['archsweep', 'crash']\n"
        "cli.main()\n",
        encoding="utf8",
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "RuntimeError: an internal inconsistency" in proc.stderr
    assert "this is a bug in archsweep" in proc.stderr.splitlines()[-1]
