"""spacy.EntityLinker.v1 beyond the contract test: graph, nO from the KB, empty docs."""

import numpy
import pytest
from thinc.api import Adam

from archs import make_docs, registry
from archs.outputs import resize_output


def t2v(width=32):
    return registry.architectures.get("spacy.HashEmbedCNN.v1")(
        width=width, depth=1, embed_size=300, window_size=1, maxout_pieces=3, subword_features=True
    )


def test_one_row_per_doc_mean_of_its_tokens(sentences):
    model = registry.architectures.get("spacy.EntityLinker.v1")(tok2vec=t2v(), nO=16)
    docs = make_docs(sentences[:3])
    model.initialize(X=docs)
    Y = model.predict(docs)
    assert Y.shape == (3, 16)
    # the same sentence alone gives the same row (no dependence on the batch)
    numpy.testing.assert_allclose(model.predict(docs[1:2])[0], Y[1], rtol=1e-5, atol=1e-6)
    # spaCy's graph: Maxout(dropout=0.0) keeps a Dropout layer, as Thinc builds it there
    assert [layer.name for layer in model.layers[1:]] == ["list2ragged", "reduce_mean", "residual(maxout>>dropout)", "linear"]


def test_nO_set_by_component_and_checked():
    model = registry.architectures.get("spacy.EntityLinker.v1")(tok2vec=t2v(), nO=None)
    resize_output(model, 50)
    model.initialize()
    assert model.get_ref("output_layer").get_dim("nO") == 50
    fixed = registry.architectures.get("spacy.EntityLinker.v1")(tok2vec=t2v(), nO=64)
    with pytest.raises(ValueError, match="built with nO = 64 but the data needs 50"):
        resize_output(fixed, 50)


def test_empty_doc_in_batch_gives_finite_row(sentences):
    model = registry.architectures.get("spacy.EntityLinker.v1")(tok2vec=t2v(), nO=8)
    docs = make_docs([sentences[0], [], sentences[1]])
    model.initialize(X=docs)
    Y, backprop = model.begin_update(docs)
    assert Y.shape == (3, 8) and numpy.isfinite(Y).all()
    backprop(model.ops.alloc2f(3, 8) + 1.0)
    model.finish_update(Adam(0.001))
