"""spacy.EntityLinker.v1: a sentence encoder whose output is compared with KB entity vectors.

spaCy's graph (spacy-legacy):
tok2vec >> list2ragged >> reduce_mean >> residual(Maxout(w, w, P=2, no layer norm,
dropout 0)) >> Linear(nO, w), one nO-vector per input doc (the mention's sentence).
nO is the knowledge base's entity-vector length; `nO = null` lets the entity_linker
component set it from its KB (search/tasks/entity_linker/component.py).
"""

from typing import List, Optional

from thinc.api import Linear, Maxout, Model, list2ragged, reduce_mean, residual
from thinc.layers.chain import forward as chain_forward
from thinc.layers.chain import init as chain_init
from thinc.types import Floats2d

from .features import Doc
from .outputs import RESIZE_OUTPUT, set_output_dim
from .registry import registry


@registry.architectures("spacy.EntityLinker.v1")
def EntityLinker(*, tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None) -> Model[List[Doc], Floats2d]:
    """The context encoder of the entity linker: one row per doc.

    tok2vec: the token encoder (spaCy's default: HashEmbedCNN width 96, depth 2,
        embed_size 300; or a listener to a shared one).
    nO: width of the output, equal to the KB's entity-vector length (16-384; the
        GloVe-built KB has 50); null lets the component set it from its KB.
    """
    width = tok2vec.get_dim("nO") if tok2vec.has_dim("nO") else None
    output_layer = Linear(nO, width)
    context = Maxout(nO=width, nI=width, nP=2, dropout=0.0, normalize=False)
    # thinc's chain, with an init that can give the residual Maxout its width first
    layers: List[Model] = [tok2vec, list2ragged(), reduce_mean(), residual(context), output_layer]
    model: Model[List[Doc], Floats2d] = Model(
        ">>".join(layer.name for layer in layers),
        chain_forward,
        init=init,
        dims={"nO": nO, "nI": None},
        layers=layers,
    )
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("context_layer", context)
    model.set_ref("output_layer", output_layer)
    model.attrs[RESIZE_OUTPUT] = set_output_dim("output_layer")  # the KB's entity-vector length
    return model


def init(model: Model, X: Optional[List[Doc]] = None, Y: Optional[Floats2d] = None) -> None:
    """thinc's chain init, after giving the residual Maxout the tok2vec's width when only
    running the tok2vec tells it (a listener to a transformer): residual() cannot infer it."""
    context = model.get_ref("context_layer")
    tok2vec = model.get_ref("tok2vec")
    if not context.has_dim("nO") and X:
        tok2vec.initialize(X=X)
        token_width = tok2vec.predict(X)[0].shape[1]
        for node in context.walk():  # Maxout(dropout=...) is a chain: maxout >> dropout
            for dim in ("nO", "nI"):
                if dim in node.dim_names and node.has_dim(dim) is None:
                    node.set_dim(dim, token_width)
    chain_init(model, X=X, Y=Y)
