"""Parameter counts and shapes equal spaCy's reference.

Reference numbers: spaCy 3.8.18 + spacy-legacy 3.0.12 (HashEmbedCNN, Tagger),
the closest released composition for HashCharEmbedCNN, and the closed form of
the removed HashCharEmbedBiLSTM (torch.nn.LSTM parameter layout). Parameters
are counted as Σ size of every parameter of every node in `model.walk()` after
`initialize` (conftest.count_params).
"""

from typing import List

import numpy
import pytest
from thinc.api import Model, fix_random_seed

from archs import make_docs, registry

# spaCy's English tokenization of the three sample texts spaCy's counts were taken on (10, 13, 8 tokens).
PARITY_WORDS = [
    ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "."],
    ["Apple", "is", "looking", "at", "buying", "a", "U.K.", "startup", "for", "$", "1", "billion", "."],
    ["I", "like", "walking", "outdoors", "in", "New", "York", "."],
]

# T2V: spaCy's reference tok2vec (spaCy 3.8's count).
T2V = dict(width=96, depth=4, embed_size=2000, window_size=1, maxout_pieces=3, subword_features=True)
CHAR = dict(width=96, embed_size=2000, maxout_pieces=3, nM=64, nC=8)


def arch(name: str):
    return registry.architectures.get(name)


def initialized(model: Model) -> Model:
    model.initialize(X=make_docs(PARITY_WORDS))
    return model


def write_npy_vectors(tmp_path, dim: int, n_words: int = 40) -> str:
    """A synthetic vectors table as `v.npy` + `v.vocab.txt` (parameter counts
    depend on its width only, not on its contents)."""
    rng = numpy.random.default_rng(0)
    numpy.save(tmp_path / "v.npy", rng.normal(size=(n_words, dim)).astype("float32"))
    words = [w for doc in PARITY_WORDS for w in doc][:n_words]
    words += [f"word{i}" for i in range(n_words - len(words))]
    (tmp_path / "v.vocab.txt").write_text("\n".join(words) + "\n", encoding="utf8")
    return str(tmp_path / "v.npy")


def bilstm_char_count(width: int, depth: int, embed_size: int, nM: int, nC: int) -> int:
    """spaCy's HashCharEmbedBiLSTM graph: char table + NORM table + mixer + LSTM layers
    (per layer and direction 4h(w + h) + 8h with h = w // 2)."""
    h = width // 2
    per_layer = 2 * (4 * h * (width + h) + 8 * h)
    return nC * 256 * nM + width * embed_size + 3 * width * (nM * nC + width) + 5 * width + depth * per_layer


@pytest.mark.parametrize(
    "name,kwargs,expected",
    [
        pytest.param("spacy.HashEmbedCNN.v1", T2V, 924_768, id="row1-HashEmbedCNN"),
        pytest.param("spacy.HashEmbedCNN.v1", {**T2V, "subword_features": False}, 553_824, id="row2-no-subwords"),
        pytest.param("spacy.HashEmbedCNN.v1", {**T2V, "dropout": 0.2}, 924_768, id="dropout-adds-no-params"),
        pytest.param(
            "spacy.HashCharEmbedCNN.v1",
            {**CHAR, "depth": 4, "window_size": 1},
            832_352,
            id="row5-HashCharEmbedCNN",
        ),
        pytest.param(
            "spacy.HashCharEmbedBiLSTM.v1",
            {**CHAR, "depth": 1},
            bilstm_char_count(96, 1, 2000, 64, 8),
            id="HashCharEmbedBiLSTM-depth1",
        ),
        pytest.param(
            "spacy.HashCharEmbedBiLSTM.v1",
            {**CHAR, "depth": 2},
            bilstm_char_count(96, 2, 2000, 64, 8),
            id="HashCharEmbedBiLSTM-depth2",
        ),
    ],
)
def test_tok2vec_param_counts(name, kwargs, expected, count_params):
    model = initialized(arch(name)(**kwargs))
    assert count_params(model) == expected
    Ys = model.predict(make_docs(PARITY_WORDS))
    assert [y.shape for y in Ys] == [(10, 96), (13, 96), (8, 96)]


def test_spacy_init_config_tok2vec_param_count(count_params):
    """spaCy's Tok2Vec.v2 as `spacy init config` writes it (MultiHashEmbed.v2 rows 5000, 1000,
    2500, 2500 and MaxoutWindowEncoder.v2 96/4/1/3): spaCy 3.8 counts 1,500,768."""
    embed = arch("spacy.MultiHashEmbed.v2")(
        width=96, attrs=["NORM", "PREFIX", "SUFFIX", "SHAPE"], rows=[5000, 1000, 2500, 2500], include_static_vectors=False
    )
    encode = arch("spacy.MaxoutWindowEncoder.v2")(width=96, depth=4, window_size=1, maxout_pieces=3)
    model = initialized(arch("spacy.Tok2Vec.v2")(embed=embed, encode=encode))
    assert count_params(model) == 1_500_768
    assert [y.shape for y in model.predict(make_docs(PARITY_WORDS))] == [(10, 96), (13, 96), (8, 96)]


def test_tok2vec_v2_with_hashembedcnn_rows_is_hashembedcnn(count_params):
    """With HashEmbedCNN's row layout (subword tables of half the NORM rows), spaCy's
    composition is HashEmbedCNN.v1: the same parameters and, seeded alike, the same output."""
    embed = arch("spacy.MultiHashEmbed.v2")(
        width=96, attrs=["NORM", "PREFIX", "SUFFIX", "SHAPE"], rows=[2000, 1000, 1000, 1000], include_static_vectors=False
    )
    encode = arch("spacy.MaxoutWindowEncoder.v2")(width=96, depth=4, window_size=1, maxout_pieces=3)
    docs = make_docs(PARITY_WORDS)
    outputs = []
    for model in (arch("spacy.Tok2Vec.v2")(embed=embed, encode=encode), arch("spacy.HashEmbedCNN.v1")(**T2V)):
        fix_random_seed(0)
        model.initialize(X=docs)
        assert count_params(model) == 924_768
        outputs.append(model.predict(docs))
    for a, b in zip(*outputs):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"rows": [5000, 1000]}, "rows: expected one row count per attribute"),
        ({"include_static_vectors": True}, "include_static_vectors"),
        ({"attrs": ["NORM", "LEMMA", "SUFFIX", "SHAPE"]}, "unknown token attribute 'LEMMA'"),
    ],
)
def test_multihashembed_refuses_what_it_cannot_build(kwargs, message):
    settings = dict(width=96, attrs=["NORM", "PREFIX", "SUFFIX", "SHAPE"], rows=[5000, 1000, 2500, 2500], include_static_vectors=False)
    with pytest.raises(ValueError, match=message):
        arch("spacy.MultiHashEmbed.v2")(**{**settings, **kwargs})


def test_bilstm_formula_values():
    # 131,072 char table + 192,000 NORM table + 175,584 mixer + depth * 56,064 (§1.3)
    assert bilstm_char_count(96, 1, 2000, 64, 8) == 131_072 + 192_000 + 175_584 + 56_064 == 554_720
    assert bilstm_char_count(96, 2, 2000, 64, 8) == 610_784


def test_hashembedcnn_with_300d_vectors(tmp_path, count_params):
    path = write_npy_vectors(tmp_path, 300)
    model = initialized(arch("spacy.HashEmbedCNN.v1")(**T2V, pretrained_vectors=path))
    assert count_params(model) == 981_216
    # the table itself is frozen data, not a parameter: only the projection W (96, 300)
    vec_nodes = [n for n in model.walk() if n.name == "static_vectors"]
    assert len(vec_nodes) == 1
    assert vec_nodes[0].get_param("W").shape == (96, 300)
    assert [y.shape for y in model.predict(make_docs(PARITY_WORDS))] == [(10, 96), (13, 96), (8, 96)]


def test_tagger_param_count(count_params):
    model = arch("spacy.Tagger.v1")(tok2vec=arch("spacy.HashEmbedCNN.v1")(**T2V), nO=17)
    initialized(model)
    assert count_params(model) == 926_417
    Ys = model.predict(make_docs(PARITY_WORDS))
    assert [y.shape for y in Ys] == [(10, 17), (13, 17), (8, 17)]
    # zero-initialised softmax: uniform probabilities before training
    for y in Ys:
        numpy.testing.assert_allclose(y, 1.0 / 17, rtol=1e-6)


def test_listener_has_no_params(count_params):
    listener = arch("spacy.Tok2VecListener.v1")(width=96)
    listener.initialize()
    assert count_params(listener) == 0


def _param_shapes(model: Model, layer_name: str, param: str) -> List[tuple]:
    return [tuple(n.get_param(param).shape) for n in model.walk() if n.name == layer_name and n.has_param(param)]


def test_row1_per_layer_breakdown():
    model = initialized(arch("spacy.HashEmbedCNN.v1")(**T2V))
    hashembeds = [n for n in model.walk() if n.name == "hashembed"]
    assert [tuple(n.get_param("E").shape) for n in hashembeds] == [(2000, 96), (1000, 96), (1000, 96), (1000, 96)]
    # tables NORM, PREFIX, SUFFIX, SHAPE with seeds 8, 9, 10, 11 (spaCy's counter from 7)
    assert [n.attrs["seed"] for n in hashembeds] == [8, 9, 10, 11]
    W = sorted(_param_shapes(model, "maxout", "W"), reverse=True)
    # the mixer always has 3 pieces over the 4 concatenated tables; 4 CNN layers over 3-token windows
    assert W == [(96, 3, 384)] + [(96, 3, 288)] * 4
    assert sorted(_param_shapes(model, "maxout", "b")) == [(96, 3)] * 5
    assert _param_shapes(model, "layernorm", "G") == [(96,)] * 5
    assert _param_shapes(model, "layernorm", "b") == [(96,)] * 5
    # with maxout_pieces=2 the CNN changes, the mixer keeps 3 pieces
    model2 = initialized(arch("spacy.HashEmbedCNN.v1")(**{**T2V, "maxout_pieces": 2}))
    assert sorted(_param_shapes(model2, "maxout", "W"), reverse=True) == [(96, 3, 384)] + [(96, 2, 288)] * 4


@pytest.mark.parametrize(
    "name,kwargs,n_out",
    [
        ("spacy.HashEmbedCNN.v1", T2V, 96),
        ("spacy.HashCharEmbedCNN.v1", {**CHAR, "depth": 2, "window_size": 1}, 96),
        ("spacy.HashCharEmbedBiLSTM.v1", {**CHAR, "depth": 1}, 96),
        ("spacy.Tagger.v1", None, 17),
    ],
)
def test_fully_specified_model_initializes_without_data(name, kwargs, n_out, count_params):
    if name == "spacy.Tagger.v1":
        model = arch(name)(tok2vec=arch("spacy.HashEmbedCNN.v1")(**T2V), nO=17)
    else:
        model = arch(name)(**kwargs)
    model.initialize()  # no sample data: every dim is known from the arguments
    assert count_params(model) > 0
    Ys = model.predict(make_docs(PARITY_WORDS))
    assert [y.shape for y in Ys] == [(10, n_out), (13, n_out), (8, n_out)]
    assert all(numpy.isfinite(y).all() for y in Ys)


# Text classification: spaCy 3.8's counts (nO = 3; the counts do not depend on exclusive_classes).
ENSEMBLE = dict(width=64, embed_size=2000, pretrained_vectors=None, ngram_size=1, window_size=1, conv_depth=2, dropout=None)


@pytest.mark.parametrize("exclusive", [True, False], ids=["exclusive", "multilabel"])
@pytest.mark.parametrize(
    "name,kwargs,expected",
    [
        pytest.param("spacy.TextCatEnsemble.v1", ENSEMBLE, 1_237_211, id="row8-Ensemble"),
        pytest.param(
            "spacy.TextCatBOW.v1", dict(ngram_size=1, no_output_layer=False), 786_435, id="row9-BOW-unigrams"
        ),
        pytest.param("spacy.TextCatBOW.v1", dict(ngram_size=2, no_output_layer=False), 786_435, id="row9-BOW-bigrams"),
        pytest.param("spacy.TextCatCNN.v1", None, 925_059, id="row10-CNN"),
    ],
)
def test_textcat_param_counts(name, kwargs, expected, exclusive, count_params):
    if name == "spacy.TextCatCNN.v1":
        model = arch(name)(tok2vec=arch("spacy.HashEmbedCNN.v1")(**T2V), exclusive_classes=exclusive, nO=3)
    else:
        model = arch(name)(**kwargs, exclusive_classes=exclusive, nO=3)
    initialized(model)
    assert count_params(model) == expected
    Y = model.predict(make_docs(PARITY_WORDS))
    assert Y.shape == (3, 3)


def test_textcat_lowdata_intended_graph(tmp_path, count_params):
    """Row 11b: spaCy 3.8's TextCatLowData.v1 cannot initialize; the intended
    graph with 300-d vectors, width 64, nO 3 has 27,779 parameters."""
    path = write_npy_vectors(tmp_path, 300)
    model = initialized(arch("spacy.TextCatLowData.v1")(width=64, pretrained_vectors=path, dropout=None, nO=3))
    assert count_params(model) == 27_779 == 64 * 300 + 64 + 2 * (64 * 64 + 64) + 3 * 64 + 3
    Y = model.predict(make_docs(PARITY_WORDS))
    assert Y.shape == (3, 3) and ((Y > 0) & (Y < 1)).all()


def test_textcat_ensemble_with_vectors_adds_projection_and_wider_mixer(tmp_path, count_params):
    """Static vectors add W (w, D) and widen the vectors maxout's input from w to 2w."""
    path = write_npy_vectors(tmp_path, 300)
    model = initialized(arch("spacy.TextCatEnsemble.v1")(**{**ENSEMBLE, "pretrained_vectors": path}, exclusive_classes=True, nO=3))
    assert count_params(model) == 1_237_211 + 64 * 300 + 64 * 3 * 64


@pytest.mark.parametrize(
    "embed_size,expected",
    [pytest.param(2000, 782_752, id="row12-EntityLinker"), pytest.param(300, 374_752, id="row13b-draft-default")],
)
def test_entity_linker_param_count(embed_size, expected, count_params):
    """Rows 12 and 13b: EntityLinker.v1 over HashEmbedCNN depth 2, nO 64; one row per doc."""
    t2v = arch("spacy.HashEmbedCNN.v1")(**{**T2V, "depth": 2, "embed_size": embed_size})
    model = initialized(arch("spacy.EntityLinker.v1")(tok2vec=t2v, nO=64))
    assert count_params(model) == expected
    assert model.predict(make_docs(PARITY_WORDS)).shape == (3, 64)
