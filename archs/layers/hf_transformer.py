"""A Hugging Face transformer over Docs: spans -> wordpieces -> hidden states, aligned to the tokens.

Used by spacy-transformers.TransformerModel.v1 (archs/transformer.py). torch and
transformers are imported when the layer is built, so `archs` imports without them.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

import numpy
from thinc.api import ArgsKwargs, Model, Optimizer, PyTorchShim, torch2xp, xp2torch
from thinc.layers.pytorchwrapper import forward as pytorch_forward
from thinc.model import deserialize_attr, serialize_attr
from thinc.types import Floats2d, Floats3d, FloatsXd, Ints2d, Ragged

from ..features import Doc
from ..registry import registry

# Per doc, the (start, end) token offsets of the spans the transformer reads.
SpanOffsets = List[Tuple[int, int]]
GetSpans = Callable[[Sequence[Doc]], List[SpanOffsets]]


class TransformerData:
    """One doc's transformer output.

    tensor: (n_rows, width) hidden states of the doc's spans, span after span, each
        span padded to the batch's longest (special tokens and padding rows included).
    align: one group per token: the rows of `tensor` holding its wordpieces, in every
        span that contains the token (a token in two overlapping spans has rows in both);
        an empty group for a token no wordpiece covers (whitespace, characters the
        tokenizer drops, or wordpieces cut off at the model's maximum length).
    wordpieces: the wordpiece strings of each of the doc's spans, padding left out.
    """

    __slots__ = ("tensor", "align", "wordpieces")

    def __init__(self, tensor: Floats2d, align: Ragged, wordpieces: List[List[str]]) -> None:
        self.tensor = tensor
        self.align = align
        self.wordpieces = wordpieces


class HFObjects:
    """What the layer needs besides its weights: the tokenizer, the span getter and
    the maximum span length in wordpieces. Rebuilt from the config, never serialized."""

    __slots__ = ("tokenizer", "get_spans", "max_length")

    def __init__(self, tokenizer: Any, get_spans: GetSpans, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.get_spans = get_spans
        self.max_length = max_length


class InPlaceUpdateShim(PyTorchShim):
    """Thinc's PyTorchShim, except that `finish_update` writes the optimizer's result into
    each torch parameter in place. PyTorchShim gives every parameter a new tensor over the
    same memory at each update (`param.data = xp2torch(...)`), and each new tensor keeps the
    previous one alive through the array it was made from: for MiniLM, 101 more tensor
    objects per update, for as long as training runs."""

    def finish_update(self, optimizer: Optimizer) -> None:
        for name, param in self._model.named_parameters():
            if param.grad is None:
                continue
            if not self._grad_scaler.found_inf:  # skip the update if a gradient overflowed
                # torch parameters and their gradients are float tensors (cast as in Thinc's PyTorchShim)
                updated, _ = optimizer((self.id, name), cast(FloatsXd, torch2xp(param.data)), cast(FloatsXd, torch2xp(param.grad)))
                updated = xp2torch(updated, device=param.device)
                if updated.data_ptr() != param.data_ptr():  # the optimizer returned a new array
                    param.data.copy_(updated)
            param.grad.zero_()
        self._grad_scaler.update()


@serialize_attr.register(HFObjects)
def _serialize_hf(_: HFObjects, value: HFObjects, name: str, model: Model) -> bytes:
    return b""  # the tokenizer and span getter come from the config


@deserialize_attr.register(HFObjects)
def _deserialize_hf(current: HFObjects, value: bytes, name: str, model: Model) -> HFObjects:
    return current


@registry.layers("archsweep.HFTransformer.v1")
def HFTransformer(
    name: str, get_spans: GetSpans, tokenizer_config: Optional[Dict[str, Any]] = None
) -> Model[List[Doc], List[TransformerData]]:
    """A pretrained transformer (`AutoModel`) with its fast tokenizer (`AutoTokenizer`).

    name: a local model directory or a hub name (a hub name needs the network once).
    get_spans: maps a batch of Docs to the (start, end) token spans to encode.
    tokenizer_config: keyword arguments for AutoTokenizer.from_pretrained
        (e.g. model_max_length to cut spans shorter than the model's maximum).
    """
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, **(tokenizer_config or {}))
    if not tokenizer.is_fast:
        raise ValueError(f"{name}: the tokenizer has no fast (Rust) version, which the alignment needs")
    transformer = AutoModel.from_pretrained(name)
    width = transformer.config.hidden_size
    # the tokenizer's limit (RoBERTa's 512 below its 514 positions), else the model's
    max_positions = getattr(transformer.config, "max_position_embeddings", None) or tokenizer.model_max_length
    max_length = int(min(tokenizer.model_max_length, max_positions))
    # Thinc's PyTorchWrapper, with a shim that updates the weights in place
    wrapper: Model[Tuple[numpy.ndarray, numpy.ndarray], Floats3d] = Model(
        "pytorch",
        pytorch_forward,
        attrs={"convert_inputs": _convert_inputs, "convert_outputs": _convert_outputs},
        shims=[InPlaceUpdateShim(transformer)],
        dims={"nI": None, "nO": None},
    )
    return Model(
        "transformer",
        forward,
        layers=[wrapper],
        dims={"nO": width},
        attrs={"hf": HFObjects(tokenizer, get_spans, max_length), "name": name},
    )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[TransformerData], Callable]:
    hf: HFObjects = model.attrs["hf"]
    ops = model.ops
    width = model.get_dim("nO")
    spans = hf.get_spans(docs)
    flat = [(d, start, end) for d, doc_spans in enumerate(spans) for start, end in doc_spans if end > start]
    if not flat:
        empty = [TransformerData(ops.alloc2f(0, width), _empty_align(ops, len(doc)), []) for doc in docs]
        return empty, lambda d_tensors: []
    texts, token_chars = zip(*(_span_text(docs[d].words[start:end]) for d, start, end in flat))
    enc = hf.tokenizer(
        list(texts),
        padding="longest",
        truncation=True,
        max_length=hf.max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_attention_mask=True,
        return_tensors="np",
    )
    input_ids = enc["input_ids"]
    n_spans, length = input_ids.shape
    hidden, backprop_hidden = model.layers[0]((input_ids, enc["attention_mask"]), is_train)
    pieces = _piece_tokens(enc, token_chars)
    bounds: List[Tuple[int, int]] = []  # each doc's span rows in the batch
    align_rows: List[numpy.ndarray] = []
    align_lengths: List[numpy.ndarray] = []
    last = 0
    for d, doc in enumerate(docs):
        first = last
        last = first + sum(1 for start, end in spans[d] if end > start)
        bounds.append((first, last))
        rows, tokens = [], []
        for k in range(first, last):
            piece_pos, token_ids = pieces[k]
            rows.append((k - first) * length + piece_pos)
            tokens.append(token_ids + flat[k][1])
        row_of, lengths = _group_by_token(rows, tokens, len(doc))
        align_rows.append(row_of)
        align_lengths.append(lengths)
    aligns = _to_device(ops, align_rows, align_lengths)
    outputs = [
        TransformerData(
            hidden[first:last].reshape(-1, width),
            align,
            [
                hf.tokenizer.convert_ids_to_tokens(input_ids[k][enc["attention_mask"][k] > 0].tolist())
                for k in range(first, last)
            ],
        )
        for (first, last), align in zip(bounds, aligns)
    ]

    def backprop(d_tensors: List[Floats2d]) -> List[Doc]:
        d_hidden = ops.alloc3f(n_spans, length, width)
        for (first, last), d_tensor in zip(bounds, d_tensors):
            if last > first:
                d_hidden[first:last] = ops.reshape3f(d_tensor, last - first, length, width)
        backprop_hidden(d_hidden)
        return []

    return outputs, backprop


def _span_text(words: Sequence[str]) -> Tuple[str, numpy.ndarray]:
    """The span's words joined by single spaces, and each word's (start, end) characters."""
    lengths = numpy.fromiter((len(w) for w in words), dtype="int64", count=len(words))
    starts = numpy.zeros(len(words), dtype="int64")
    if len(words) > 1:
        starts[1:] = numpy.cumsum(lengths[:-1] + 1)
    return " ".join(words), numpy.stack([starts, starts + lengths], axis=1)


def _piece_tokens(enc: Any, token_chars: Sequence[numpy.ndarray]) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
    """Per span: (wordpiece position, span-local token index) for each wordpiece whose
    characters overlap a token's (a piece over two tokens is listed for both)."""
    offsets = enc["offset_mapping"]
    real = (enc["special_tokens_mask"] == 0) & (enc["attention_mask"] > 0)
    result = []
    for k, chars in enumerate(token_chars):
        positions = numpy.nonzero(real[k] & (offsets[k, :, 1] > offsets[k, :, 0]))[0]
        starts, ends = offsets[k, positions, 0], offsets[k, positions, 1]
        lo = numpy.searchsorted(chars[:, 1], starts, side="right")  # first token ending after the piece starts
        hi = numpy.searchsorted(chars[:, 0], ends, side="left")  # tokens starting before the piece ends
        counts = numpy.maximum(hi - lo, 0)
        total = int(counts.sum())
        within = numpy.arange(total) - numpy.repeat(numpy.cumsum(counts) - counts, counts)
        result.append((numpy.repeat(positions, counts), numpy.repeat(lo, counts) + within))
    return result


def _group_by_token(rows: List[numpy.ndarray], tokens: List[numpy.ndarray], n_tokens: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Each token's sorted unique rows, flat, and how many each token has (zeros allowed)."""
    if not rows:
        return numpy.zeros(0, dtype="int32"), numpy.zeros(n_tokens, dtype="int32")
    row = numpy.concatenate(rows).astype("int64")
    token = numpy.concatenate(tokens).astype("int64")
    stride = int(row.max(initial=0)) + 1
    pairs = numpy.unique(token * stride + row)
    token_of, row_of = pairs // stride, pairs % stride
    lengths = numpy.bincount(token_of, minlength=n_tokens)
    return row_of.astype("int32"), lengths.astype("int32")


def _to_device(ops: Any, rows: List[numpy.ndarray], lengths: List[numpy.ndarray]) -> List[Ragged]:
    """The docs' alignments as Ragged views of two device arrays: built on the host for
    the whole batch, copied to the device once (not twice per doc)."""
    all_rows = ops.asarray1i(numpy.concatenate(rows))
    all_lengths = ops.asarray1i(numpy.concatenate(lengths))
    aligns, row_start, token_start = [], 0, 0
    for doc_rows, doc_lengths in zip(rows, lengths):
        row_end, token_end = row_start + len(doc_rows), token_start + len(doc_lengths)
        aligns.append(Ragged(all_rows[row_start:row_end], all_lengths[token_start:token_end]))
        row_start, token_start = row_end, token_end
    return aligns


def _empty_align(ops: Any, n_tokens: int) -> Ragged:
    return Ragged(ops.alloc1i(0), ops.alloc1i(n_tokens))


def _convert_inputs(model: Model, X: Tuple[numpy.ndarray, numpy.ndarray], is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    input_ids, attention_mask = X
    kwargs = {
        "input_ids": xp2torch(model.ops.asarray(cast(Ints2d, input_ids), dtype="int64")),
        "attention_mask": xp2torch(model.ops.asarray(cast(Ints2d, attention_mask), dtype="int64")),
    }
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: None


def _convert_outputs(model: Model, inputs_outputs: Tuple[Any, Any], is_train: bool) -> Tuple[Floats3d, Callable]:
    _, output = inputs_outputs
    last_hidden = output.last_hidden_state

    def backprop(d_hidden: Floats3d) -> ArgsKwargs:
        d_torch = xp2torch(d_hidden, device=last_hidden.device)
        return ArgsKwargs(args=(last_hidden,), kwargs={"grad_tensors": (d_torch,)})

    return cast(Floats3d, torch2xp(last_hidden, ops=model.ops)), backprop
