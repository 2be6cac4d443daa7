"""Sentence boundaries: documents of several sentences (ConllUCorpus.v1's
sentences_per_doc), the parser's BREAK move learned through the component, and
spaCy's sents_p/r/f."""

import numpy
import pytest
from search_testing import CONFIGS, PATHS, TRAIN

from search.corpora.conllu import read_conllu
from search.corpora.example import join_sentences
from search.tasks.parsing.arc_eager import BREAK, ArcEager
from search.tasks.parsing.dep_scorer import score_sentences, sentence_starts
from search.training.config import ConfigError
from search.training.loop import train

PARSER_CFG = CONFIGS / "parser.cfg"


@pytest.fixture(scope="module")
def sentences():
    return read_conllu(TRAIN, limit=60)


def test_join_sentences_concatenates_words_features_and_gold(sentences):
    docs = join_sentences(sentences, 4)
    assert len(docs) == 15
    first = docs[0]
    group = sentences[:4]
    assert first.doc.words == [w for eg in group for w in eg.doc.words]
    numpy.testing.assert_array_equal(first.doc.features, numpy.concatenate([eg.doc.features for eg in group]))
    assert first.gold["upos"] == [t for eg in group for t in eg.gold["upos"]]
    offsets = numpy.cumsum([0] + [len(eg) for eg in group])
    for eg, offset in zip(group, offsets):
        for i, h in enumerate(eg.gold["heads"]):
            joined = first.gold["heads"][offset + i]
            assert joined == (h if h is None or h < 0 else h + offset)
    assert [i for i, s in enumerate(first.gold["sent_starts"]) if s] == list(offsets[:-1])
    assert first.source == group[0].source
    assert join_sentences(sentences, 1) == list(sentences)


def test_sentences_per_doc_is_checked():
    with pytest.raises((ConfigError, ValueError), match="sentences_per_doc"):
        train(PARSER_CFG, overrides={**PATHS, "corpora.train.sentences_per_doc": 0, "training.max_steps": 1})


def test_the_oracle_of_a_joined_document_breaks_at_every_gold_sentence(sentences):
    moves = ArcEager.from_examples(sentences, min_freq=1)
    for doc in join_sentences(sentences, 5):
        gold = moves.gold_from_example(doc)
        seq = moves.oracle_sequence(gold)
        st = moves.init_state(len(doc))
        for clas in seq:
            moves.apply(st, clas)
        assert moves.is_gold_parse(st, gold)
        gold_starts = [i for i, s in enumerate(doc.gold["sent_starts"]) if s]
        assert sorted(st.sent_starts) == gold_starts[1:]
        assert sum(1 for c in seq if moves.classes[c][0] == BREAK) == len(gold_starts) - 1
        # and the gold tree, read as a parse, implies exactly the gold sentences
        heads, _ = moves.decode(st)
        assert sentence_starts(heads) == gold_starts


def test_sentence_starts_and_scores_hand_worked():
    # two sentences "a b c | d e": roots b (1) and e (4); a -> b, c -> b, d -> e
    heads = [1, -1, 1, 4, -1]
    assert sentence_starts(heads) == [0, 3]
    # a parse that also makes c a root splits the first sentence: spans (0,2), (2,3), (3,5)
    assert sentence_starts([1, -1, -1, 4, -1]) == [0, 2, 3]
    scores = score_sentences([[0, 3]], [[0, 2, 3]], [5])
    assert scores["sents_p"] == pytest.approx(1 / 3)
    assert scores["sents_r"] == pytest.approx(1 / 2)
    assert scores["sents_f"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert score_sentences([[0]], [[0]], [3])["sents_f"] == 1.0


def test_the_parser_learns_sentence_boundaries_in_documents():
    """Trained on documents of 5 sentences, the parser finds the boundaries of dev
    documents of 5 (0.78 sents_f after 400 steps here; a parser that made one root
    per document would score 0, one that made every word a root close to 0)."""
    rows = []
    train(
        PARSER_CFG,
        overrides={
            **PATHS, "corpora.train.sentences_per_doc": 5, "corpora.dev.sentences_per_doc": 5,
            "corpora.dev.limit": 100, "training.max_steps": 400, "training.eval_frequency": 100,
            "components.parser.per_type_scores": False,
        },
        on_evaluation=rows.append,
    )
    assert {"sents_p", "sents_r", "sents_f"} <= set(rows[-1].scores)
    best = max(r.scores["sents_f"] for r in rows)
    assert best > 0.5, [r.scores["sents_f"] for r in rows]
    assert max(r.scores["dep_uas"] for r in rows) > 0.5

