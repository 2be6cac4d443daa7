"""Tok2vec architectures: token features -> context-sensitive vectors (one (n, width) array per Doc)."""

from typing import List, Optional, Sequence, Union

from thinc.api import (
    HashEmbed,
    Model,
    chain,
    clone,
    concatenate,
    expand_window,
    list2ragged,
    ragged2list,
    residual,
    with_array,
)
from thinc.types import Floats2d, Ints1d, Ints2d, Ragged

from .features import Doc
from .layers import (
    BiLSTM,
    CharacterEmbed,
    FeatureExtractor,
    FixedDropout,
    NormalizedMaxout,
    StaticVectors,
    Tok2VecListener,
    with_batch_array,
)
from .registry import registry
from .types import DropoutRate, NonNegativeInt, PositiveInt
from .vectors import load_vectors


@registry.architectures("spacy.HashEmbedCNN.v1")
def HashEmbedCNN(
    *,
    width: PositiveInt,
    depth: PositiveInt,
    embed_size: PositiveInt,
    window_size: NonNegativeInt,
    maxout_pieces: PositiveInt,
    subword_features: bool,
    dropout: Optional[DropoutRate] = None,
    pretrained_vectors: Optional[Union[bool, str]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Hash embeddings of NORM (+ PREFIX, SUFFIX, SHAPE) mixed by a maxout layer,
    then a residual CNN of layer-normalised maxout windows.

    width: width of every layer and of the output; 64-300 (96 is spaCy's small model).
    depth: number of CNN layers; 2-8. The receptive field is depth * (2 * window_size + 1).
    embed_size: rows of the NORM table (the subword tables get half); 2000-10000.
    window_size: tokens on each side a CNN layer sees; 1 (sometimes 2).
    maxout_pieces: pieces of the CNN maxout units; 2-3 (the mixer always uses 3).
    subword_features: also embed PREFIX, SUFFIX and SHAPE; true for alphabetic languages.
    dropout: extra dropout rate on the embedding output, fixed by the architecture
        (0.0-0.3); the training loop's own `dropout` applies to every other dropout
        layer as in spaCy. None leaves it out.
    pretrained_vectors: path to a static vectors table (word2vec/GloVe text, or
        NAME.npy with NAME.vocab.txt) whose projection is mixed in; null for none.
    """
    if subword_features:
        attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
        rows = [embed_size, embed_size // 2, embed_size // 2, embed_size // 2]
    else:
        attrs = ["NORM"]
        rows = [embed_size]
    embed = multi_hash_embed(width, attrs, rows, resolve_vectors_path(pretrained_vectors), dropout)
    encode = maxout_window_encoder(width, window_size, maxout_pieces, depth)
    return build_tok2vec(embed, encode, width)


@registry.architectures("spacy.HashCharEmbedCNN.v1")
def HashCharEmbedCNN(
    *,
    width: PositiveInt,
    depth: PositiveInt,
    embed_size: PositiveInt,
    window_size: NonNegativeInt,
    maxout_pieces: PositiveInt,
    nM: PositiveInt,
    nC: PositiveInt,
    dropout: Optional[DropoutRate] = None,
    pretrained_vectors: Optional[Union[bool, str]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Character embeddings (the UTF-8 bytes at nC positions of each word) plus a
    NORM hash embedding, mixed by maxout, then the residual maxout CNN.

    width, depth, window_size, maxout_pieces: as in spacy.HashEmbedCNN.v1.
    embed_size: rows of the NORM table; 2000-10000.
    nM: width of each character's embedding; 16-64.
    nC: character positions per word (first, last, second, second-last, ...); 4-8.
    dropout: extra dropout on the embedding output (0.0-0.3), or None.
    pretrained_vectors: not supported with character embeddings (must be null).
    """
    _reject_vectors("spacy.HashCharEmbedCNN.v1", pretrained_vectors)
    embed = char_norm_embed(width, embed_size, nM, nC, dropout)
    encode = maxout_window_encoder(width, window_size, maxout_pieces, depth)
    return build_tok2vec(embed, encode, width)


@registry.architectures("spacy.HashCharEmbedBiLSTM.v1")
def HashCharEmbedBiLSTM(
    *,
    width: PositiveInt,
    depth: PositiveInt,
    embed_size: PositiveInt,
    maxout_pieces: PositiveInt,
    nM: PositiveInt,
    nC: PositiveInt,
    dropout: Optional[DropoutRate] = None,
    pretrained_vectors: Optional[Union[bool, str]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """The character + NORM embedding of spacy.HashCharEmbedCNN.v1 encoded by a
    bidirectional LSTM (hidden width // 2 per direction) instead of a CNN.

    width: embedding and output width (must be even); 64-300.
    depth: LSTM layers; 1-3.
    embed_size, nM, nC: as in spacy.HashCharEmbedCNN.v1.
    maxout_pieces: accepted for config compatibility with the CNN variants; unused (the
        mixer always has 3 pieces and there is no CNN).
    dropout: extra dropout on the embedding output and between LSTM layers
        (0.0-0.3), or None.
    pretrained_vectors: not supported with character embeddings (must be null).
    """
    _reject_vectors("spacy.HashCharEmbedBiLSTM.v1", pretrained_vectors)
    embed = char_norm_embed(width, embed_size, nM, nC, dropout)
    return Tok2Vec(embed=embed, encode=BiLSTM(nO=width, nI=width, depth=depth, dropout=dropout or 0.0))


@registry.architectures("spacy.Tok2Vec.v2")
def Tok2Vec(
    *, embed: Model[List[Doc], List[Floats2d]], encode: Model[List[Floats2d], List[Floats2d]]
) -> Model[List[Doc], List[Floats2d]]:
    """spaCy's composition of an embedding and a context encoder, as `spacy init config` writes it.

    embed: token features -> context-independent vectors, e.g. spacy.MultiHashEmbed.v2.
    encode: vectors -> context-sensitive vectors of the same width, e.g.
        spacy.MaxoutWindowEncoder.v2.
    """
    model: Model[List[Doc], List[Floats2d]] = chain(embed, encode)
    if encode.has_dim("nO"):
        model.set_dim("nO", encode.get_dim("nO"))
    model.set_ref("embed", embed)
    model.set_ref("encode", encode)
    return model


@registry.architectures("spacy.MultiHashEmbed.v2")
def MultiHashEmbed(
    *, width: PositiveInt, attrs: List[str], rows: List[PositiveInt], include_static_vectors: bool
) -> Model[List[Doc], List[Floats2d]]:
    """One hash embedding table per token attribute, concatenated and mixed to `width`
    by a layer-normalised 3-piece maxout (spaCy's MultiHashEmbed, the same seeds).

    width: width of every table and of the output; 64-300.
    attrs: the attributes embedded, of ORTH, LOWER, NORM, PREFIX, SUFFIX, SHAPE
        (spaCy's default: NORM, PREFIX, SUFFIX, SHAPE).
    rows: rows of each attribute's table, one per attribute; 1000-10000 each.
    include_static_vectors: must be false: archsweep reads static vectors from a file
        (spacy.HashEmbedCNN.v1's pretrained_vectors), not from a spaCy vocab.
    """
    if include_static_vectors:
        raise ValueError(
            "include_static_vectors: static vectors from a spaCy vocab are not supported (expected false); "
            "spacy.HashEmbedCNN.v1 takes pretrained_vectors = a GloVe or word2vec file"
        )
    if len(rows) != len(attrs):
        raise ValueError(f"rows: expected one row count per attribute ({len(attrs)}), got {len(rows)}")
    return multi_hash_embed(width, [attr.upper() for attr in attrs], rows, None, None)


@registry.architectures("spacy.MaxoutWindowEncoder.v2")
def MaxoutWindowEncoder(
    *, width: PositiveInt, window_size: NonNegativeInt, maxout_pieces: PositiveInt, depth: PositiveInt
) -> Model[List[Floats2d], List[Floats2d]]:
    """depth residual layers of layer-normalised maxout over a window of tokens, run over
    the batch at once with the docs padded apart (spaCy's MaxoutWindowEncoder).

    width: input and output width (they are equal for the residual connections); 64-300.
    window_size: tokens on each side a layer sees; 1 (sometimes 2).
    maxout_pieces: pieces of the maxout units; 2-3.
    depth: number of layers; 2-8. The receptive field is depth * (2 * window_size + 1).
    """
    encode = maxout_window_encoder(width, window_size, maxout_pieces, depth)
    model: Model[List[Floats2d], List[Floats2d]] = with_batch_array(encode, pad=encode.attrs["receptive_field"])
    model.set_dim("nO", width)
    return model


@registry.architectures("spacy.Tok2VecListener.v1")
def Tok2VecListenerArchitecture(width: PositiveInt, upstream: str = "*", grad_factor: float = 1.0) -> Model[List[Doc], List[Floats2d]]:
    """Use the output of a shared tok2vec component instead of an own encoder.

    width: the upstream tok2vec's width.
    upstream: the tok2vec component's name, or "*" for the pipeline's only one.
    grad_factor: weight of this component's gradient in the shared update (0-1).
    """
    return Tok2VecListener(width, upstream=upstream, grad_factor=grad_factor)


def build_tok2vec(
    embed: Model[List[Doc], List[Floats2d]], encode: Model[Floats2d, Floats2d], width: int
) -> Model[List[Doc], List[Floats2d]]:
    """embed >> encode, with the encoder run over the whole batch at once: the
    docs are concatenated with receptive-field-wide padding between them (once,
    before the stack, as spaCy does), so windows never cross documents."""
    model: Model[List[Doc], List[Floats2d]] = chain(embed, with_batch_array(encode, pad=encode.attrs["receptive_field"]))
    model.set_dim("nO", width)
    model.set_ref("embed", embed)
    model.set_ref("encode", encode)
    return model


def multi_hash_embed(
    width: int,
    attrs: Sequence[str],
    rows: Sequence[int],
    vectors_path: Optional[str],
    dropout: Optional[float],
) -> Model[List[Doc], List[Floats2d]]:
    """One HashEmbed table per attribute (seeds 8, 9, ... as spaCy), optional
    static vectors, concatenated and mixed to `width` by a 3-piece maxout."""
    tables: List[Model[Union[Ints1d, Ints2d], Floats2d]] = [
        HashEmbed(width, n_rows, column=i, seed=8 + i, dropout=0.0) for i, n_rows in enumerate(rows)
    ]
    # the batch's features as one Ragged: one host-to-device copy, no per-doc arrays
    hashed: Model[List[Doc], Ragged] = chain(FeatureExtractor(attrs, as_ragged=True), with_array(concatenate(*tables)))
    if vectors_path:
        n_inputs = len(tables) + 1
        embedded: Model[List[Doc], Ragged] = concatenate(hashed, StaticVectors(load_vectors(vectors_path), nO=width))
    else:
        n_inputs = len(tables)
        embedded = hashed
    return chain(embedded, _mixer(width, width * n_inputs, dropout), ragged2list())


def char_norm_embed(width: int, embed_size: int, nM: int, nC: int, dropout: Optional[float]) -> Model[List[Doc], List[Floats2d]]:
    """CharacterEmbed(nM, nC) beside a NORM HashEmbed, mixed to `width`."""
    chars: Model[List[Doc], Ragged] = chain(CharacterEmbed(nM, nC), list2ragged())
    norm: Model[List[Doc], Ragged] = chain(
        FeatureExtractor(["NORM"], as_ragged=True),
        with_array(HashEmbed(width, embed_size, column=0, seed=0, dropout=0.0)),
    )
    return chain(concatenate(chars, norm), _mixer(width, nM * nC + width, dropout), ragged2list())


def maxout_window_encoder(width: int, window_size: int, maxout_pieces: int, depth: int) -> Model[Floats2d, Floats2d]:
    """depth x residual(expand_window(window_size) >> layer-normalised Maxout)."""
    cnn: Model[Floats2d, Floats2d] = chain(
        expand_window(window_size=window_size),
        NormalizedMaxout(nO=width, nI=width * (2 * window_size + 1), nP=maxout_pieces, dropout=0.0),
    )
    model = clone(residual(cnn), depth)
    model.set_dim("nO", width)
    model.attrs["receptive_field"] = window_size * depth
    return model


def _mixer(width: int, n_inputs: int, dropout: Optional[float]) -> Model:
    maxout = NormalizedMaxout(width, n_inputs, nP=3, dropout=0.0)
    if dropout is not None:
        maxout = chain(maxout, FixedDropout(dropout))
    return with_array(maxout)


def resolve_vectors_path(pretrained_vectors: Optional[Union[bool, str]]) -> Optional[str]:
    if pretrained_vectors is None or pretrained_vectors is False:
        return None
    if pretrained_vectors is True:
        raise ValueError(
            "pretrained_vectors = true: give the path of a vectors file instead "
            "(word2vec/GloVe text, or NAME.npy with NAME.vocab.txt beside it)"
        )
    return str(pretrained_vectors)


def _reject_vectors(name: str, pretrained_vectors: Optional[Union[bool, str]]) -> None:
    if pretrained_vectors:
        raise ValueError(f"{name}: pretrained_vectors is not supported with character embeddings; set it to null")
