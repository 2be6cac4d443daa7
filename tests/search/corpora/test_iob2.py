"""search.iob2: reading IOB2 NER files (real bundled UNER English-EWT sample + small hand-written files)."""

import logging
from collections import Counter
from pathlib import Path

import pytest
from confection import Config

from archs import registry
from search.corpora.example import CorpusError
from search.corpora.iob2 import IOB2Corpus, biluo_to_spans, iob2_to_biluo, read_iob2, spans_to_biluo

REPO = Path(__file__).resolve().parents[3]
UNER = REPO / "data" / "uner_english_ewt"
NER_TRAIN = UNER / "en_ewt-ud-train.approx.sample.iob2"
NER_DEV = UNER / "en_ewt-ud-dev.sample.iob2"


def tok(i, form, tag="O", annotator="-"):
    """One IOB2 token line (5 tab-separated columns)."""
    return "\t".join([str(i), form, tag, "-", annotator])


def write(tmp_path: Path, lines, name="x.iob2") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


# ------------------------------------------------------------------ bundled sample


@pytest.mark.parametrize(
    "path, n_sents, n_tokens, spans",
    [
        (NER_TRAIN, 600, 13_708, {"PER": 292, "LOC": 412, "ORG": 175}),
        (NER_DEV, 200, 2_241, {"LOC": 96, "ORG": 8}),
    ],
    ids=["train", "dev"],
)
def test_sample_counts_match_readme(path, n_sents, n_tokens, spans):
    stats = {}
    examples = read_iob2(path, stats=stats)
    assert len(examples) == n_sents
    assert sum(len(eg) for eg in examples) == n_tokens
    assert Counter(label for eg in examples for _, _, label in eg.gold["entities"]) == spans
    assert stats == {
        "sentences": n_sents, "tokens": n_tokens, "entities": sum(spans.values()), "repaired": 0, "missing": 0
    }
    # Independent count from the raw file: one span per B- tag (the sample is valid IOB2).
    tags = [line.split("\t")[2] for line in path.read_text(encoding="utf8").splitlines() if line[:1].isdigit()]
    assert len(tags) == n_tokens
    assert Counter(t[2:] for t in tags if t.startswith("B-")) == spans


def test_sample_examples_are_consistent():
    examples = read_iob2(NER_DEV)
    lines = NER_DEV.read_text(encoding="utf8").splitlines()
    for eg in examples:
        n = len(eg)
        assert n == len(eg.doc.words) == len(eg.gold["ner"]) > 0
        assert eg.doc.features.shape[0] == n
        assert biluo_to_spans(eg.gold["ner"]) == eg.gold["entities"]
        assert all(t == "O" or t[:2] in ("B-", "I-", "L-", "U-") for t in eg.gold["ner"])
        # source = file:line of the sentence's first token line
        path, line_no = eg.source.rsplit(":", 1)
        assert path == str(NER_DEV)
        assert lines[int(line_no) - 1].split("\t")[:2] == ["1", eg.doc.words[0]]
    first = examples[0]
    assert first.doc.words[6:8] == ["tampa", "bay"]
    assert first.gold["ner"][6:8] == ["B-LOC", "L-LOC"]
    assert first.gold["entities"] == [(6, 8, "LOC")]


def test_limit_reads_first_sentences():
    assert [eg.doc.words for eg in read_iob2(NER_DEV, limit=3)] == [eg.doc.words for eg in read_iob2(NER_DEV)[:3]]


def test_registered_reader_reads_once(tmp_path):
    cfg = Config().from_str(
        f"""
        [corpus]
        @readers = "archsweep.IOB2Corpus.v1"
        path = "{NER_DEV}"
        limit = 5
        """
    )
    corpus = registry.resolve(cfg)["corpus"]
    assert isinstance(corpus, IOB2Corpus)
    assert len(corpus) == 5
    assert corpus() is corpus()  # read once
    assert corpus.n_repaired == 0
    assert [len(eg) for eg in corpus] == [len(eg) for eg in read_iob2(NER_DEV, limit=5)]
    with pytest.raises(ValueError, match="limit"):
        registry.readers.get("archsweep.IOB2Corpus.v1")(str(NER_DEV), limit=-1)


def test_logs_counts(caplog):
    with caplog.at_level(logging.INFO, logger="search.corpora.iob2"):
        read_iob2(NER_DEV, limit=10)
    assert any("read 10 sentences" in r.getMessage() and str(NER_DEV) in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ IOB2 -> BILUO


@pytest.mark.parametrize(
    "iob, biluo, repaired",
    [
        (["O", "B-PER", "I-PER", "I-PER", "O"], ["O", "B-PER", "I-PER", "L-PER", "O"], []),
        (["B-LOC"], ["U-LOC"], []),
        (["B-LOC", "I-LOC"], ["B-LOC", "L-LOC"], []),
        (["B-PER", "B-PER", "I-PER"], ["U-PER", "B-PER", "L-PER"], []),  # adjacent entities
        (["B-PER", "B-ORG"], ["U-PER", "U-ORG"], []),
        # I-X without a preceding B-X/I-X of the same type starts an entity (repaired, as spaCy)
        (["I-PER", "I-PER"], ["B-PER", "L-PER"], [0]),
        (["O", "I-LOC", "O"], ["O", "U-LOC", "O"], [1]),
        (["B-PER", "I-ORG", "I-ORG"], ["U-PER", "B-ORG", "L-ORG"], [1]),
        # a span never crosses a missing token
        (["B-PER", None, "O"], ["U-PER", None, "O"], []),
        (["B-PER", "I-PER", None], ["B-PER", "L-PER", None], []),
        (["B-PER", None, "I-PER"], ["U-PER", None, "U-PER"], [2]),
        ([None, None], [None, None], []),
        ([], [], []),
    ],
)
def test_iob2_to_biluo(iob, biluo, repaired):
    assert iob2_to_biluo(iob) == (biluo, repaired)
    spans = biluo_to_spans(biluo)
    if None not in biluo:
        assert spans_to_biluo(len(biluo), spans) == biluo


def test_iob2_to_biluo_rejects_non_iob2_tags():
    for bad in ("L-PER", "U-PER", "B-", "PER", "b-PER"):
        with pytest.raises(ValueError, match="IOB2"):
            iob2_to_biluo(["O", bad])


def test_biluo_spans_roundtrip_and_errors():
    assert biluo_to_spans(["U-PER", "O", "B-LOC", "I-LOC", "L-LOC"]) == [(0, 1, "PER"), (2, 5, "LOC")]
    assert spans_to_biluo(4, [(1, 3, "ORG")]) == ["O", "B-ORG", "L-ORG", "O"]
    for bad in (["I-PER"], ["B-PER"], ["B-PER", "L-LOC"], ["L-PER"], ["B-PER", "O"], ["X-PER"]):
        with pytest.raises(ValueError):
            biluo_to_spans(bad)
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_biluo(3, [(0, 2, "A"), (1, 3, "B")])


# ------------------------------------------------------------------ hand-written files


def test_reads_comments_blank_lines_and_missing_tags(tmp_path):
    path = write(
        tmp_path,
        [
            "# newdoc id = d1",
            "# sent_id = s1",
            "# text = Ann met Bob",
            tok(1, "Ann", "B-PER", "x"),
            tok(2, "met"),
            tok(3, "Bob", "-"),
            "",
            "",  # several blank lines are one boundary
            "# sent_id = s2",
            tok(1, "New", "B-LOC"),
            tok(2, "York", "I-LOC"),
            tok(3, "x", "_"),
        ],  # no blank line at the end of the file
    )
    stats = {}
    egs = read_iob2(path, stats=stats)
    assert [eg.doc.words for eg in egs] == [["Ann", "met", "Bob"], ["New", "York", "x"]]
    assert egs[0].gold["ner"] == ["U-PER", "O", None]
    assert egs[0].gold["entities"] == [(0, 1, "PER")]
    assert egs[1].gold["ner"] == ["B-LOC", "L-LOC", None]
    assert egs[1].gold["entities"] == [(0, 2, "LOC")]
    assert egs[0].source == f"{path}:4" and egs[1].source == f"{path}:10"
    assert stats["missing"] == 2 and stats["entities"] == 2


def test_repair_is_counted_and_logged(tmp_path, caplog):
    path = write(tmp_path, [tok(1, "a"), tok(2, "b", "I-ORG"), "", tok(1, "c", "I-PER"), tok(2, "d", "I-PER")])
    with caplog.at_level(logging.WARNING, logger="search.corpora.iob2"):
        corpus = IOB2Corpus(path)
        egs = corpus()
    assert corpus.n_repaired == 2
    assert egs[0].gold["ner"] == ["O", "U-ORG"] and egs[1].gold["ner"] == ["B-PER", "L-PER"]
    msg = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "2 I-X tag(s)" in msg and f"{path}:2" in msg and f"{path}:4" in msg


@pytest.mark.parametrize(
    "line, expected",
    [
        ("2\tAnn\tB-PER\t-", "expected 5 tab-separated columns"),
        ("2\tAnn\tB-PER\t-\t-\textra", "expected 5 tab-separated columns"),
        ("2 Ann B-PER - -", "expected 5 tab-separated columns"),
        ("2\tAnn\tE-PER\t-\t-", "expected the tag to be O, B-X or I-X"),
        ("2\tAnn\tL-PER\t-\t-", "expected the tag to be O, B-X or I-X"),
        ("2\tAnn\tB-\t-\t-", "expected the tag to be O, B-X or I-X"),
        ("2\tAnn\t\t-\t-", "expected the tag to be O, B-X or I-X"),
        ("2\tAnn\tPER\t-\t-", "expected the tag to be O, B-X or I-X"),
        ("2\t\tO\t-\t-", "empty token column"),
        ("3\tAnn\tO\t-\t-", "expected token ID 2"),
        ("x\tAnn\tO\t-\t-", "expected token ID 2"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, expected):
    path = write(tmp_path, ["# sent_id = s1", tok(1, "Hi"), line, ""])
    with pytest.raises(CorpusError) as err:
        read_iob2(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:3:"), msg
    assert expected in msg


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_iob2("/nonexistent/x.iob2")
