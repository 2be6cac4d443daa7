"""Tok2vec behaviour: the architecture's fixed dropout, pretrained vectors,
spaCy-compatible token features, and batch independence of the CNN encoder."""

import re
from pathlib import Path
from typing import List

import numpy
import pytest
from thinc.api import Adam, Model, NumpyOps, fix_random_seed, set_dropout_rate
from thinc.types import Ragged

from archs import Doc, make_docs, registry
from archs.features import hash_string, word_shape
from archs.layers import StaticVectors
from archs.vectors import Vectors, load_vectors

SMALL = dict(width=64, depth=2, embed_size=1000, window_size=1, maxout_pieces=3, subword_features=True)


def hash_embed_cnn(**kwargs) -> Model:
    return registry.architectures.get("spacy.HashEmbedCNN.v1")(**{**SMALL, **kwargs})


def param_nodes(model: Model) -> List[Model]:
    # depth-first: the order does not depend on how deeply a layer is nested
    return [n for n in model.walk(order="dfs_pre") if n.param_names]


def copy_params(src: Model, dst: Model) -> None:
    """Copy every parameter from src to dst; the graphs may differ by
    parameter-free layers (e.g. FixedDropout) but not in their parameters."""
    s_nodes, d_nodes = param_nodes(src), param_nodes(dst)
    assert [(n.name, n.param_names) for n in s_nodes] == [(n.name, n.param_names) for n in d_nodes]
    for s, d in zip(s_nodes, d_nodes):
        for name in s.param_names:
            d.set_param(name, s.get_param(name).copy())


def assert_lists_equal(A, B) -> None:
    assert len(A) == len(B)
    for a, b in zip(A, B):
        numpy.testing.assert_array_equal(a, b)


def lists_differ(A, B) -> bool:
    return any(not numpy.array_equal(a, b) for a, b in zip(A, B))


# --------------------------------------------------------------------- dropout


def test_fixed_dropout_training_forwards_differ_and_predict_is_identity(sentences):
    docs = make_docs(sentences)
    fix_random_seed(0)
    model = hash_embed_cnn(dropout=0.3)
    model.initialize(X=docs)
    # the training loop's global dropout: every other dropout layer off
    set_dropout_rate(model, 0.0)
    Y1, _ = model.begin_update(docs)
    Y2, _ = model.begin_update(docs)
    P1 = model.predict(docs)
    P2 = model.predict(docs)
    assert lists_differ(Y1, Y2), "set_dropout_rate(model, 0.0) switched the architecture's dropout off"
    assert lists_differ(Y1, P1) and lists_differ(Y2, P1)
    assert_lists_equal(P1, P2)  # inference is deterministic

    # On the embedding output itself: ~30% of the values dropped, the rest
    # scaled by 1 / (1 - 0.3) (inverted dropout), identity in predict.
    embed = model.get_ref("embed")
    E_pred = numpy.concatenate(embed.predict(docs))
    E_train = numpy.concatenate(embed.begin_update(docs)[0])
    kept = E_train != 0
    assert 0.25 < 1.0 - kept.mean() < 0.35
    numpy.testing.assert_allclose(E_train[kept], E_pred[kept] / 0.7, rtol=1e-5)
    rates = [n.attrs["fixed_dropout_rate"] for n in model.walk() if "fixed_dropout_rate" in n.attrs]
    assert rates == [0.3]


def test_predict_with_dropout_equals_model_without_dropout(sentences):
    docs = make_docs(sentences)
    with_drop = hash_embed_cnn(dropout=0.3)
    with_drop.initialize(X=docs)
    without = hash_embed_cnn(dropout=None)
    without.initialize(X=docs)
    assert not any(n.name == "fixed_dropout" for n in without.walk())
    assert lists_differ(with_drop.predict(docs), without.predict(docs))  # different init
    copy_params(with_drop, without)
    assert_lists_equal(with_drop.predict(docs), without.predict(docs))
    # dropout=0.0 keeps the layer but it is a no-op even in training
    zero = hash_embed_cnn(dropout=0.0)
    zero.initialize(X=docs)
    copy_params(with_drop, zero)
    set_dropout_rate(zero, 0.0)
    assert_lists_equal(zero.begin_update(docs)[0], without.predict(docs))


def test_global_dropout_rate_governs_the_other_layers(sentences):
    docs = make_docs(sentences[:4])
    model = hash_embed_cnn(dropout=None)
    model.initialize(X=docs)
    set_dropout_rate(model, 0.0)
    assert_lists_equal(model.begin_update(docs)[0], model.begin_update(docs)[0])
    assert_lists_equal(model.begin_update(docs)[0], model.predict(docs))
    set_dropout_rate(model, 0.2)
    assert lists_differ(model.begin_update(docs)[0], model.begin_update(docs)[0])


def _train(model: Model, docs, targets, n_steps: int = 3):
    optimizer = Adam(0.01)
    for _ in range(n_steps):
        Ys, backprop = model.begin_update(docs)
        backprop([y - t for y, t in zip(Ys, targets)])
        model.finish_update(optimizer)
    return model.predict(docs)


def test_training_with_dropout_changes_the_updates(sentences):
    docs = make_docs(sentences)
    rng = numpy.random.default_rng(0)
    targets = [rng.normal(size=(len(d), SMALL["width"])).astype("float32") for d in docs]
    results = {}
    for run, dropout in [("none", None), ("none-again", None), ("drop", 0.3)]:
        fix_random_seed(0)
        model = hash_embed_cnn(dropout=dropout)
        model.initialize(X=docs)
        set_dropout_rate(model, 0.0)
        results[run + "-init"] = model.predict(docs)
        results[run] = _train(model, docs, targets)
    # same seed: same initial weights whether or not the dropout layer is there
    assert_lists_equal(results["none-init"], results["drop-init"])
    # training without dropout is reproducible, so the difference is dropout's
    assert_lists_equal(results["none"], results["none-again"])
    assert lists_differ(results["none"], results["drop"])


# ---------------------------------------------------------- pretrained vectors


def _glove_row(path: Path, word: str) -> numpy.ndarray:
    for line in path.read_text(encoding="utf8").splitlines():
        parts = line.split(" ")
        if parts[0] == word:
            return numpy.array([float(x) for x in parts[1:]], dtype="float32")
    raise KeyError(word)


def test_load_glove_slice(glove_path):
    vectors = load_vectors(glove_path)
    n_lines = sum(1 for line in glove_path.read_text(encoding="utf8").splitlines() if line.strip())
    assert vectors.shape == (n_lines, 50)
    assert load_vectors(str(glove_path)) is vectors  # loaded once per process
    the = vectors.find(numpy.array([hash_string("the")], dtype="uint64"))[0]
    assert the >= 0
    numpy.testing.assert_allclose(vectors.data[the], _glove_row(glove_path, "the"))
    assert vectors.data[the][0] == pytest.approx(0.418)


def test_find_and_lower_fallback(glove_path):
    vectors = load_vectors(glove_path)
    keys = numpy.array([hash_string(w) for w in ["the", "The", "qwzxvbn"]], dtype="uint64")
    rows = vectors.find(keys)
    assert rows[0] >= 0
    assert rows[1] == -1  # GloVe is lower-cased: no "The" row by ORTH
    assert rows[2] == -1
    doc = Doc(["The", "THE", "the", "qwzxvbn", "Qwzxvbn"])
    assert list(vectors.rows_for(doc.features)) == [rows[0], rows[0], rows[0], -1, -1]


def test_orth_row_wins_over_lower(tmp_path):
    path = tmp_path / "cased.txt"
    path.write_text("Apple 1 0\napple 0 1\nzebra 2 2\n", encoding="utf8")
    vectors = load_vectors(path)
    rows = vectors.rows_for(Doc(["Apple", "apple", "APPLE", "Zebra", "pear"]).features)
    assert [tuple(vectors.data[r]) if r >= 0 else None for r in rows] == [
        (1.0, 0.0),
        (0.0, 1.0),
        (0.0, 1.0),
        (2.0, 2.0),
        None,
    ]


def test_static_vectors_unknown_token_projects_a_zero_vector(glove_path):
    vectors = load_vectors(glove_path)
    layer = StaticVectors(vectors, nO=8)
    layer.initialize()
    W = layer.get_param("W")
    assert W.shape == (8, 50)
    out = layer.predict([Doc(["The", "qwzxvbn", "dog"])])
    assert list(out.lengths) == [3]
    rows = vectors.rows_for(Doc(["the", "qwzxvbn", "dog"]).features)
    numpy.testing.assert_allclose(out.data[0], W @ vectors.data[rows[0]], rtol=1e-5, atol=1e-6)
    numpy.testing.assert_array_equal(out.data[1], numpy.zeros(8, dtype="float32"))
    numpy.testing.assert_allclose(out.data[2], W @ vectors.data[rows[2]], rtol=1e-5, atol=1e-6)


def _write_table(path: Path, words: List[str], seed: int, dim: int = 20) -> Path:
    rng = numpy.random.default_rng(seed)
    lines = [w + " " + " ".join(f"{x:.6f}" for x in rng.normal(size=dim)) for w in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def test_hashembedcnn_output_depends_on_the_vectors_table(tmp_path, sentences):
    docs = make_docs(sentences[:4])
    words = sorted({w.lower() for s in sentences[:4] for w in s})
    a = _write_table(tmp_path / "a.txt", words, seed=1)
    a_copy = _write_table(tmp_path / "a_copy.txt", words, seed=1)
    b = _write_table(tmp_path / "b.txt", words, seed=2)
    models = {}
    for name, path in [("a", a), ("a_copy", a_copy), ("b", b)]:
        model = hash_embed_cnn(pretrained_vectors=str(path))
        model.initialize(X=docs)
        if models:
            copy_params(models["a"], model)
        models[name] = model
    assert [n.get_param("W").shape for n in models["a"].walk() if n.name == "static_vectors"] == [(64, 20)]
    Ya = models["a"].predict(docs)
    assert_lists_equal(Ya, models["a_copy"].predict(docs))  # same contents, same output
    Yb = models["b"].predict(docs)
    assert all(not numpy.allclose(ya, yb) for ya, yb in zip(Ya, Yb))


def test_pretrained_vectors_true_asks_for_a_path():
    from confection import Config

    config = """
[model]
@architectures = "spacy.HashEmbedCNN.v1"
width = 64
depth = 1
embed_size = 500
window_size = 1
maxout_pieces = 3
subword_features = true
pretrained_vectors = true
"""
    with pytest.raises(ValueError, match=r"pretrained_vectors = true: give the path of a vectors file"):
        registry.resolve(Config().from_str(config))


@pytest.mark.parametrize("name", ["spacy.HashCharEmbedCNN.v1", "spacy.HashCharEmbedBiLSTM.v1"])
def test_char_architectures_reject_vectors(name, glove_path):
    kwargs = dict(width=32, depth=1, embed_size=100, maxout_pieces=3, nM=8, nC=4, pretrained_vectors=str(glove_path))
    if name == "spacy.HashCharEmbedCNN.v1":
        kwargs["window_size"] = 1
    with pytest.raises(ValueError, match=re.escape(name) + ".*not supported"):
        registry.architectures.get(name)(**kwargs)


def test_malformed_vectors_file_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("the 0.1 0.2 0.3\nof 0.4 0.5 0.6\nand 0.7 0.8\nto 0.1 0.1 0.1\n", encoding="utf8")
    with pytest.raises(ValueError, match=re.escape(f"{path}:3:") + ".*3 numbers.*got 2"):
        load_vectors(path)
    with pytest.raises(ValueError, match=re.escape(f"{path}:3:")):
        hash_embed_cnn(pretrained_vectors=str(path))
    # a header line does not shift the count: line 3 is still line 3
    with_header = tmp_path / "bad_header.txt"
    with_header.write_text("3 3\nthe 0.1 0.2 0.3\nof 0.4 x 0.6\n", encoding="utf8")
    with pytest.raises(ValueError, match=re.escape(f"{with_header}:3:") + ".*numbers"):
        load_vectors(with_header)


def test_missing_vectors_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_vectors(tmp_path / "nope.txt")
    numpy.save(tmp_path / "lonely.npy", numpy.zeros((2, 3), dtype="float32"))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "lonely.vocab.txt"))):
        load_vectors(tmp_path / "lonely.npy")


def test_npy_table_and_first_duplicate_wins(tmp_path):
    data = numpy.arange(12, dtype="float32").reshape((4, 3))
    numpy.save(tmp_path / "v.npy", data)
    (tmp_path / "v.vocab.txt").write_text("cat\ndog\ncat\nemu\n", encoding="utf8")
    vectors = load_vectors(tmp_path / "v.npy")
    assert vectors.shape == (3, 3)
    rows = vectors.rows_for(Doc(["Cat", "dog", "emu", "yak"]).features)
    assert rows[3] == -1
    numpy.testing.assert_array_equal(vectors.data[rows[:3]], data[[0, 1, 3]])
    with pytest.raises(ValueError, match="2 words but a vectors array of shape"):
        Vectors(["a", "b"], numpy.zeros((3, 4), dtype="float32"), name="x")


# -------------------------------------------------------------------- features

# spacy.strings.hash_string values, computed with spaCy 3.8.18.
SPACY_HASHES = {
    "The": 5059648917813135842,
    "the": 7425985699627899538,
    "Apple": 6418411030699964375,
    "U.K.": 14409890634315022856,
    "jumping": 15840907385880450517,
    "$": 11283501755624150392,
    "naïve": 16224804062388677344,
    "日本": 2324319125191504834,
    "": 14313749767032693980,
    "a long string of more than eight bytes": 15657933212563263748,
}

# spacy.blank("en"), Doc(vocab, words).to_array(["ORTH", "LOWER", "NORM", "PREFIX", "SUFFIX", "SHAPE"])
SPACY_FEATURES = [
    ("The", (5059648917813135842, 7425985699627899538, 7425985699627899538, 5582244037879929967, 5059648917813135842, 18200729499220207786)),
    ("U.K.", (14409890634315022856, 5036092404992532342, 5036092404992532342, 8804677687338025421, 1848430105621347826, 9346084826459880894)),
    ("’s", (614914527630368944, 614914527630368944, 16428057658620181782, 9283054155332335931, 614914527630368944, 12685219922295555250)),
    ("€", (7817016891017139529, 7817016891017139529, 11283501755624150392, 7817016891017139529, 7817016891017139529, 7817016891017139529)),
    ("--", (10501404726543969396, 10501404726543969396, 9153284864653046197, 9153284864653046197, 10501404726543969396, 10501404726543969396)),
    ("hello-world123", (2649248564322619423, 2649248564322619423, 2649248564322619423, 15817570140490810055, 14679782072990268740, 11077096321972755932)),
    ("naïve", (16224804062388677344, 16224804062388677344, 16224804062388677344, 13210364986222294696, 17615626165935046056, 13110060611322374290)),
    ("日本", (2324319125191504834, 2324319125191504834, 2324319125191504834, 13370836091431588237, 2324319125191504834, 4370460163704169311)),
]


@pytest.mark.parametrize("text,expected", sorted(SPACY_HASHES.items()))
def test_hash_string_equals_spacy(text, expected):
    assert hash_string(text) == expected


def test_feature_matrix_equals_spacy_to_array():
    words = [w for w, _ in SPACY_FEATURES]
    expected = numpy.array([row for _, row in SPACY_FEATURES], dtype="uint64")
    doc = Doc(words)
    assert doc.features.dtype == numpy.uint64
    numpy.testing.assert_array_equal(doc.features, expected)
    # make_docs hashes through one shared featurizer: same values
    numpy.testing.assert_array_equal(make_docs([words, words[:2]])[0].features, expected)


@pytest.mark.parametrize(
    "word,shape",
    [
        ("Apple", "Xxxxx"),
        ("1999", "dddd"),
        ("U.K.", "X.X."),
        ("hello-world123", "xxxx-xxxxddd"),
        ("Thhhhhe", "Xxxxx"),  # runs cut at 4
        ("19999999", "dddd"),
        ("$", "$"),
    ],
)
def test_word_shape(word, shape):
    assert word_shape(word) == shape


def test_char_ids_interleaved_order_and_padding():
    doc = Doc(["jumping", "ab", "a", "日本"])
    ids = doc.char_ids(4)
    assert ids.shape == (4, 4)
    assert list(ids[0]) == [ord("j"), ord("g"), ord("u"), ord("n")]
    assert list(ids[1]) == [ord("a"), ord("b"), 255, 255]
    assert list(ids[2]) == [ord("a"), 255, 255, 255]
    b = "日本".encode("utf8")  # 6 bytes: first, last, second, second-last
    assert list(ids[3]) == [b[0], b[5], b[1], b[4]]
    assert list(doc.char_ids(8)[0]) == [ord(c) for c in "jgunmip"] + [255]
    assert doc.char_ids(4) is ids  # cached per nC


# --------------------------------------------------------- batch independence


@pytest.mark.parametrize("window_size,depth", [(1, 2), (2, 2), (1, 4)])
def test_doc_output_independent_of_the_other_docs_in_the_batch(sentences, window_size, depth):
    """with_array pads receptive-field-wide (k * d rows) once between docs, so
    edge tokens see the evolving pad rows but never another doc's tokens."""
    a, b, c = make_docs([sentences[0], sentences[1], sentences[5]])
    model = hash_embed_cnn(width=32, window_size=window_size, depth=depth)
    model.initialize(X=[a, b, c])
    Y_ab = model.predict([a, b])
    Y_ac = model.predict([a, c])
    Y_ca = model.predict([c, a])
    Y_bca = model.predict([b, c, a])
    for Y_a in (Y_ac[0], Y_ca[1], Y_bca[2]):
        numpy.testing.assert_allclose(Y_a, Y_ab[0], rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(Y_bca[0], Y_ab[1], rtol=1e-5, atol=1e-6)
    assert not numpy.allclose(Y_ab[0][:3], Y_ab[1][:3])


def _reference_encoder(model: Model, docs, window_size: int, depth: int, fresh_padding: bool):
    """numpy reference of the residual maxout-window CNN over the embed output.

    pad-once (spaCy): k * d zero rows before, between and after the docs,
    inserted once; after each layer they are no longer zero. fresh_padding:
    the pad rows are reset to zero before every layer (per-doc fresh padding)."""
    k = window_size
    pad = k * depth
    embedded = [numpy.asarray(e, dtype="float64") for e in model.get_ref("embed").predict(docs)]
    width = embedded[0].shape[1]
    blocks = [numpy.zeros((pad, width))]
    is_pad = [numpy.ones(pad, dtype=bool)]
    for e in embedded:
        blocks += [e, numpy.zeros((pad, width))]
        is_pad += [numpy.zeros(len(e), dtype=bool), numpy.ones(pad, dtype=bool)]
    X = numpy.concatenate(blocks)
    is_pad = numpy.concatenate(is_pad)
    encode = model.get_ref("encode")
    maxouts = [n for n in encode.walk(order="dfs_pre") if n.name == "maxout"]
    norms = [n for n in encode.walk(order="dfs_pre") if n.name == "layernorm"]
    assert len(maxouts) == len(norms) == depth
    n = X.shape[0]
    for maxout, norm in zip(maxouts, norms):
        if fresh_padding:
            X = X * ~is_pad[:, None]
        Xp = numpy.concatenate([numpy.zeros((k, width)), X, numpy.zeros((k, width))])
        windows = numpy.concatenate([Xp[i : i + n] for i in range(2 * k + 1)], axis=1)
        W, b = maxout.get_param("W"), maxout.get_param("b")
        H = (numpy.einsum("ni,opi->nop", windows, W) + b).max(axis=-1)
        mu = H.mean(axis=1, keepdims=True)
        var = H.var(axis=1, keepdims=True) + 1e-8
        X = X + (H - mu) / numpy.sqrt(var) * norm.get_param("G") + norm.get_param("b")
    Ys = []
    start = pad
    for e in embedded:
        Ys.append(X[start : start + len(e)])
        start += len(e) + pad
    return Ys


@pytest.mark.parametrize("window_size,depth", [(1, 2), (2, 2), (1, 4)])
def test_encoder_matches_pad_once_reference(sentences, window_size, depth):
    docs = make_docs(sentences[:3])
    model = hash_embed_cnn(width=32, window_size=window_size, depth=depth)
    model.initialize(X=docs)
    Ys = model.predict(docs)
    pad_once = _reference_encoder(model, docs, window_size, depth, fresh_padding=False)
    for y, ref in zip(Ys, pad_once):
        numpy.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    # The parity detail: fresh zero padding at every layer changes the edge
    # tokens (within the receptive field of a doc edge) and nothing else.
    fresh = _reference_encoder(model, docs, window_size, depth, fresh_padding=True)
    reach = window_size * (depth - 1)
    for y, ref in zip(Ys, fresh):
        interior = slice(reach, len(y) - reach)
        numpy.testing.assert_allclose(y[interior], ref[interior], rtol=1e-4, atol=1e-4)
        assert not numpy.allclose(y[:1], ref[:1], rtol=1e-4, atol=1e-4)
        assert not numpy.allclose(y[-1:], ref[-1:], rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------- one copy per batch


class CountingOps(NumpyOps):
    """NumpyOps that counts asarray calls on host arrays (host-to-device copies on a GPU)."""

    def __init__(self) -> None:
        super().__init__(use_blis=False)
        self.host_copies = 0

    def asarray(self, data, dtype=None):
        if isinstance(data, numpy.ndarray):
            self.host_copies += 1
        return super().asarray(data, dtype=dtype)


@pytest.mark.parametrize("as_ragged", [False, True])
def test_feature_extractor_copies_the_batch_once(sentences, as_ragged):
    from archs.layers import FeatureExtractor

    docs = make_docs(sentences[:12]) + [Doc([])] + make_docs(sentences[12:15])
    ops = CountingOps()
    model = FeatureExtractor(["NORM", "SHAPE", "PREFIX"], as_ragged=as_ragged)
    model.ops = ops
    out, _ = model.begin_update(docs)
    assert ops.host_copies == 1  # the batch's rows, not one copy per doc
    expected = [doc.features[:, [2, 5, 3]] for doc in docs]
    if as_ragged:
        assert isinstance(out, Ragged)
        # lengths stay on the host: splitting by them needs no read-back from the device
        assert isinstance(out.lengths, numpy.ndarray) and out.lengths.dtype == numpy.int32
        assert out.lengths.tolist() == [len(doc) for doc in docs]
        numpy.testing.assert_array_equal(out.data, numpy.concatenate(expected))
        assert out.data.dtype == numpy.uint64
    else:
        assert_lists_equal(out, expected)
        assert all(x.dtype == numpy.uint64 for x in out)
    empty, _ = model.begin_update([])
    assert (empty.dataXd.shape if as_ragged else len(empty)) == ((0, 3) if as_ragged else 0)


def test_hash_embed_cnn_uses_one_feature_copy_per_batch(sentences):
    docs = make_docs(sentences[:10])
    fix_random_seed(0)
    model = hash_embed_cnn()
    model.initialize(X=docs)
    extractors = [n for n in model.walk() if n.name == "extract_features"]
    assert len(extractors) == 1 and extractors[0].attrs["as_ragged"]
    ops = CountingOps()
    extractors[0].ops = ops
    model.begin_update(docs)
    assert ops.host_copies == 1


@pytest.mark.parametrize("pad", [0, 1, 3])
def test_with_batch_array_equals_thinc_with_array(pad):
    """Same outputs and input gradients as thinc's with_array (padding layout and
    empty docs included), and a model saved with one loads into the other."""
    from thinc.api import Maxout, expand_window, with_array
    from thinc.api import chain as tchain

    from archs.layers import with_batch_array

    rng = numpy.random.RandomState(0)
    lengths = [3, 0, 5, 1, 0, 7]
    Xs = [rng.uniform(-1, 1, (n, 8)).astype("f") for n in lengths]
    dYs = [rng.uniform(-1, 1, (n, 6)).astype("f") for n in lengths]
    results = []
    for wrap in (with_array, with_batch_array):
        fix_random_seed(0)
        inner = tchain(expand_window(window_size=1), Maxout(6, 24, nP=2, normalize=True, dropout=0.0))
        model = wrap(inner, pad=pad)
        model.initialize(X=Xs)
        Ys, backprop = model.begin_update(Xs)
        dXs = backprop(dYs)
        results.append((model, Ys, dXs))
    (ref, Y_ref, dX_ref), (ours, Y_ours, dX_ours) = results
    assert ours.name == ref.name
    assert_lists_equal(Y_ours, Y_ref)
    assert_lists_equal(dX_ours, dX_ref)
    assert [y.shape for y in Y_ours] == [(n, 6) for n in lengths]
    ours.from_bytes(ref.to_bytes())  # same structure
    assert_lists_equal(ours.predict(Xs), ref.predict(Xs))
