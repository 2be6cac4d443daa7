"""search.corpus: reading CoNLL-U into Examples (real bundled UD EWT sample + small hand-written files)."""

import re
from pathlib import Path

import numpy
import pytest
from confection import Config
from search_testing import DEV, TRAIN

from archs import registry
from archs.features import ATTRS, Featurizer
from search.corpora.conllu import Corpus, read_conllu
from search.corpora.example import CorpusError, count_words
from search.corpora.files import json_lines, text_lines


def tok(i, form, upos="NOUN", xpos="NN", head="0", deprel="root"):
    """One CoNLL-U token line (10 tab-separated columns)."""
    return "\t".join([str(i), form, form.lower(), upos, xpos, "_", str(head), deprel, "_", "_"])


def write(tmp_path: Path, lines, name="x.conllu", end="\n") -> Path:
    path = tmp_path / name
    path.write_text(end.join(lines) + end, encoding="utf8")
    return path


# ------------------------------------------------------------------ bundled sample


@pytest.mark.parametrize(
    "path, n_sents, n_words, n_ranges, n_empty",
    [(TRAIN, 600, 13_709, 136, 3), (DEV, 200, 4_007, 59, 1)],
    ids=["train", "dev"],
)
def test_sample_counts_match_readme(path, n_sents, n_words, n_ranges, n_empty):
    examples = read_conllu(path)
    assert len(examples) == n_sents
    assert count_words(examples) == n_words
    assert sum(len(eg.doc.words) for eg in examples) == n_words
    # The file really holds the multiword ranges and empty nodes that
    # data/ud_english_ewt/README.md counts, so the word count above proves
    # the reader skipped them.
    ids = [line.split("\t", 1)[0] for line in path.read_text(encoding="utf8").splitlines() if re.match(r"^\d", line)]
    assert sum("-" in i for i in ids) == n_ranges
    assert sum("." in i for i in ids) == n_empty
    assert len(ids) == n_words + n_ranges + n_empty


def test_sample_examples_are_consistent():
    examples = read_conllu(DEV)
    for eg in examples:
        n = len(eg)
        assert n == len(eg.doc.words) > 0
        for key in ("upos", "xpos", "heads", "deps"):
            assert len(eg.gold[key]) == n, key
        assert all(h is None or -1 <= h < n for h in eg.gold["heads"])
        assert eg.gold["heads"].count(-1) >= 1  # a root per sentence
        assert eg.source.startswith(f"{DEV}:")
    first = examples[0]
    assert first.source == f"{DEV}:{_first_token_line(DEV)}"


def _first_token_line(path: Path) -> int:
    for i, line in enumerate(path.read_text(encoding="utf8").splitlines(), 1):
        if line and not line.startswith("#"):
            return i
    raise AssertionError("no token line")


def test_docs_carry_uint64_feature_matrix():
    examples = read_conllu(TRAIN, limit=20)
    featurize = Featurizer()
    for eg in examples:
        feats = eg.doc.features
        assert feats.dtype == numpy.uint64
        assert feats.shape == (len(eg), len(ATTRS)) == (len(eg), 6)
        numpy.testing.assert_array_equal(feats, featurize(eg.doc.words))
    # Same word -> same row; different words -> different ORTH hashes.
    words = [w for eg in examples for w in eg.doc.words]
    rows = numpy.concatenate([eg.doc.features for eg in examples])
    the = [i for i, w in enumerate(words) if w == "the"]
    assert len(the) >= 2
    assert (rows[the] == rows[the[0]]).all()
    assert len({int(r[0]) for r in rows}) == len(set(words))


# ------------------------------------------------------------------ small files


def test_multiword_ranges_and_empty_nodes_are_skipped(tmp_path):
    path = write(
        tmp_path,
        [
            "# sent_id = 1",
            "# text = He said won't go.",
            tok(1, "He", "PRON", "PRP", 2, "nsubj"),
            tok(2, "said", "VERB", "VBD", 0, "root"),
            "3-4\twon't\t_\t_\t_\t_\t_\t_\t_\t_",
            tok(3, "wo", "AUX", "MD", 5, "aux"),
            tok(4, "n't", "PART", "_", 5, "advmod"),
            tok(5, "go", "VERB", "VB", 2, "ccomp"),
            "5.1\tgo\tgo\tVERB\t_\t_\t_\t_\t2:conj\t_",
            tok(6, ".", "PUNCT", ".", "_", "_"),
            "",
        ],
    )
    [eg] = read_conllu(path)
    assert eg.doc.words == ["He", "said", "wo", "n't", "go", "."]
    assert eg.gold["upos"] == ["PRON", "VERB", "AUX", "PART", "VERB", "PUNCT"]
    assert eg.gold["xpos"] == ["PRP", "VBD", "MD", None, "VB", "."]  # "_" -> None
    assert eg.gold["heads"] == [1, -1, 4, 4, 1, None]  # 0-based, root -1, "_" -> None
    assert eg.gold["deps"] == ["nsubj", "root", "aux", "advmod", "ccomp", None]
    assert eg.source == f"{path}:3"
    assert eg.doc.features.shape == (6, 6)


def test_last_sentence_without_trailing_blank_line(tmp_path):
    path = tmp_path / "x.conllu"
    path.write_text(
        "\n".join([tok(1, "Hi", "INTJ"), "", tok(1, "Bye", "INTJ"), tok(2, "now", "ADV", "RB", 1, "advmod")]),
        encoding="utf8",
    )
    examples = read_conllu(path)
    assert [eg.doc.words for eg in examples] == [["Hi"], ["Bye", "now"]]
    assert examples[1].gold["heads"] == [-1, 0]


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path, [tok(1, "Hi", "INTJ"), tok(2, "there", "ADV", "RB", 1, "advmod"), ""], end="\r\n")
    [eg] = read_conllu(path)
    assert eg.doc.words == ["Hi", "there"]
    assert eg.gold["deps"] == ["root", "advmod"]


def test_limit(tmp_path):
    full = read_conllu(TRAIN)
    five = read_conllu(TRAIN, limit=5)
    assert len(five) == 5
    assert [eg.doc.words for eg in five] == [eg.doc.words for eg in full[:5]]
    assert len(read_conllu(TRAIN, limit=10_000)) == len(full) == 600
    # Sentences after the limit are not read: a malformed one there is not reported.
    path = write(tmp_path, [tok(1, "a"), "", tok(1, "b"), "", "oops", ""])
    assert [eg.doc.words for eg in read_conllu(path, limit=2)] == [["a"], ["b"]]
    with pytest.raises(CorpusError):
        read_conllu(path)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.conllu"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        read_conllu(missing)


def test_registered_reader_is_lazy_and_limited():
    config = Config().from_str(
        f"""
        [train]
        @readers = "archsweep.ConllUCorpus.v1"
        path = "{TRAIN}"
        limit = 7
        """
    )
    corpus = registry.resolve(config)["train"]
    assert isinstance(corpus, Corpus)
    assert corpus._examples is None  # nothing read yet
    assert len(corpus) == 7
    assert corpus() is corpus()  # read once
    assert [eg.doc.words for eg in corpus] == [eg.doc.words for eg in read_conllu(TRAIN, limit=7)]


# ------------------------------------------------------------------ malformed input


def _bad_file(tmp_path, bad_line: str):
    """Two good sentences, then a sentence whose 3rd token line is `bad_line`."""
    lines = [
        "# sent_id = a",
        tok(1, "One"),
        "",
        "# sent_id = b",
        tok(1, "Two"),
        "",
        "# sent_id = c",
        tok(1, "The", "DET", "DT", 2, "det"),
        tok(2, "end", "NOUN", "NN", 0, "root"),
        bad_line,
        "",
    ]
    return write(tmp_path, lines), lines.index(bad_line) + 1


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        ("3\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_", r"expected 10 tab-separated columns, found 9"),
        ("3\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_\t_", r"expected 10 tab-separated columns, found 11"),
        (tok(4, "."), r"expected token ID 3 .*found '4'"),
        (tok(2, "."), r"expected token ID 3 .*found '2'"),
        (tok("x", "."), r"expected token ID 3 .*found 'x'"),
        (tok(3, ".", head="two"), r"expected HEAD to be an integer or '_', found 'two'"),
        (tok(3, ".", head="-1"), r"expected HEAD to be an integer or '_', found '-1'"),
        (tok("3-x", "."), r"expected an ID like 3, 3-4 or 3\.1, found '3-x'"),
    ],
    ids=["9-columns", "11-columns", "id-skips", "id-repeats", "id-not-int", "head-not-int", "head-negative", "bad-range"],
)
def test_malformed_line_names_file_line_and_expectation(tmp_path, bad_line, expected):
    path, line_no = _bad_file(tmp_path, bad_line)
    with pytest.raises(CorpusError) as info:
        read_conllu(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_no}: "), message
    assert re.search(expected, message), message
    assert isinstance(info.value, ValueError)


def test_id_sequence_restarts_after_blank_line(tmp_path):
    # A sentence that does not start at 1 is reported at its first line.
    path = write(tmp_path, [tok(1, "a"), "", tok(2, "b"), ""])
    with pytest.raises(CorpusError, match=re.escape(f"{path}:3: expected token ID 1")):
        read_conllu(path)


def test_head_beyond_sentence_raises(tmp_path):
    path, line_no = _bad_file(tmp_path, tok(3, ".", "PUNCT", ".", 7, "punct"))
    with pytest.raises(CorpusError) as info:
        read_conllu(path)
    message = str(info.value)
    assert str(path) in message
    assert "token 3" in message and "HEAD 7" in message
    assert "beyond the sentence" in message and "3 words" in message


def test_head_beyond_sentence_names_the_token_line(tmp_path):
    path, line_no = _bad_file(tmp_path, tok(3, ".", "PUNCT", ".", 7, "punct"))
    with pytest.raises(CorpusError) as info:
        read_conllu(path)
    assert str(info.value).startswith(f"{path}:{line_no}: "), str(info.value)


# ------------------------------------------------------------------ one-record-per-line files (text classification, entity linking)


def test_text_lines_skip_blank_lines_and_name_file_and_line(tmp_path, caplog):
    path = tmp_path / "x.txt"
    path.write_bytes(b"a b\r\n\n  \nc\xa0d\n")  # CRLF, blank lines, then a Latin-1 byte on line 4
    assert list(text_lines(path, "latin-1")) == [(f"{path}:1", "a b"), (f"{path}:4", "c\xa0d")]
    with pytest.raises(CorpusError, match=re.escape(f"{path}:4: not valid utf8 (byte 0xa0)")):
        list(text_lines(path))
    assert list(text_lines(path, "auto"))[-1] == (f"{path}:4", "c\xa0d")
    assert f"{path}:4: not valid UTF-8; reading the file as Latin-1" in caplog.text


def test_json_lines_parse_each_line_and_name_a_bad_one(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n[2]\n{bad\n', encoding="utf8")
    lines = json_lines(path)
    assert next(lines) == (f"{path}:1", {"a": 1})
    assert next(lines) == (f"{path}:3", [2])
    with pytest.raises(CorpusError, match=re.escape(f"{path}:4: not valid JSON")):
        next(lines)
