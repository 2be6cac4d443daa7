"""`archsweep spacy-vectors` (search/tracking/spacy_vectors.py) with spaCy 3.8 itself: the
directory it writes, loaded by spaCy, gives a token the vector archsweep gives it."""

from pathlib import Path

import numpy
import pytest
from search_testing import run_cli

from archs.features import Doc
from archs.vectors import load_vectors
from search.tracking.spacy_vectors import cased_forms, write_spacy_vectors

spacy = pytest.importorskip("spacy")

# a lower-cased table, as GloVe, with a cased word of its own ("US") and a repeated word
TABLE = """the 1 0
president 0 1
us 2 2
US 3 3
new-york 4 4
mcdonald 5 5
the 9 9
"""


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spacy-vectors")
    source = folder / "table.txt"
    source.write_text(TABLE, encoding="utf8")
    summary = write_spacy_vectors(source, folder / "spacy")
    return load_vectors(source), spacy.load(folder / "spacy"), summary


def _spacy_vector(nlp, token: str) -> numpy.ndarray:
    vectors = nlp.vocab.vectors
    (row,) = vectors.find(keys=spacy.tokens.Doc(nlp.vocab, words=[token]).to_array(vectors.attr))
    return vectors.data[row] if row >= 0 else numpy.zeros(vectors.shape[1], dtype="float32")


def _archsweep_vector(table, token: str) -> numpy.ndarray:
    (row,) = table.rows_for(Doc([token]).features)
    return table.data[row] if row >= 0 else numpy.zeros(table.shape[1], dtype="float32")


@pytest.mark.parametrize(
    "token, vector",
    [
        ("the", [1, 0]),  # a repeated word keeps its first row
        ("The", [1, 0]),  # sentence-initial
        ("THE", [1, 0]),
        ("President", [0, 1]),
        ("us", [2, 2]),
        ("US", [3, 3]),  # the table's own cased word, not an alias of "us"
        ("Us", [2, 2]),
        ("New-York", [4, 4]),  # title case
        ("New-york", [4, 4]),  # capitalised
        ("NEW-YORK", [4, 4]),
        ("Obama", [0, 0]),  # in neither
    ],
)
def test_spacy_finds_the_vector_archsweep_finds(tables, token, vector):
    table, nlp, _ = tables
    assert _archsweep_vector(table, token).tolist() == vector
    assert _spacy_vector(nlp, token).tolist() == vector


def test_mixed_case_is_what_spacy_still_misses(tables):
    table, nlp, _ = tables
    assert _archsweep_vector(table, "McDonald").tolist() == [5, 5]
    assert _spacy_vector(nlp, "McDonald").tolist() == [0, 0]


def test_the_rows_are_the_tables_own(tables):
    _, nlp, summary = tables
    assert nlp.vocab.vectors.shape == (7, 2)  # no row added: the model's parameters are unchanged
    assert (summary.words, summary.width) == (6, 2)
    # The THE, President PRESIDENT, Us (not US: the table's own), New-york New-York NEW-YORK, Mcdonald MCDONALD
    assert summary.cased_keys == 10


@pytest.mark.parametrize(
    "word, forms",
    [("the", ["The", "THE"]), ("new-york", ["New-york", "New-York", "NEW-YORK"]), ("US", []), ("42", [])],
)
def test_cased_forms(word, forms):
    assert cased_forms(word) == forms


def _missing(tmp: Path) -> list:
    return [str(tmp / "absent.txt"), str(tmp / "out")]


def _existing_output(tmp: Path) -> list:
    (tmp / "table.txt").write_text(TABLE, encoding="utf8")
    (tmp / "out").mkdir()
    return [str(tmp / "table.txt"), str(tmp / "out")]


def _short_row(tmp: Path) -> list:
    (tmp / "table.txt").write_text("the 1 0\npresident 1\n", encoding="utf8")
    return [str(tmp / "table.txt"), str(tmp / "out")]


@pytest.mark.parametrize(
    "args, message",
    [
        (_missing, "error: vectors file not found: {tmp}/absent.txt"),
        (_existing_output, "error: {tmp}/out: already exists; expected a new directory for the spaCy vectors"),
        (_short_row, "error: {tmp}/table.txt:2: expected a word and 2 numbers, got 1 values"),
    ],
    ids=["missing-table", "existing-output", "short-row"],
)
def test_bad_input_is_one_error_line_and_nothing_written(tmp_path, args, message):
    argv = args(tmp_path)
    existed = (tmp_path / "out").exists()
    proc = run_cli("spacy-vectors", *argv)
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.strip().splitlines() == [message.format(tmp=tmp_path)]
    assert "Traceback" not in proc.stderr
    if not existed:
        assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_the_command_writes_a_directory_spacy_loads(tmp_path):
    (tmp_path / "table.txt").write_text(TABLE, encoding="utf8")
    proc = run_cli("spacy-vectors", str(tmp_path / "table.txt"), str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {tmp_path / 'out'}: 6 words of width 2, and 10 keys for their other casings"
    assert _spacy_vector(spacy.load(tmp_path / "out"), "The").tolist() == [1, 0]
