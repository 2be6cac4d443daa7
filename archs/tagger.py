"""spacy.Tagger.v1: a softmax over each token's tok2vec vector."""

from typing import List, Optional

from thinc.api import Model, Softmax, chain, zero_init
from thinc.types import Floats2d

from .features import Doc
from .layers.with_batch_array import with_batch_array
from .outputs import RESIZE_OUTPUT, set_output_dim
from .registry import registry


@registry.architectures("spacy.Tagger.v1")
def Tagger(*, tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None) -> Model[List[Doc], List[Floats2d]]:
    """Per-token class probabilities.

    tok2vec: the token encoder (an own one, or a listener to a shared one).
    nO: number of tags; null lets the component set it from its labels.
    """
    t2v_width = tok2vec.get_dim("nO") if tok2vec.has_dim("nO") else None
    output_layer = Softmax(nO, t2v_width, init_W=zero_init)
    model: Model[List[Doc], List[Floats2d]] = chain(tok2vec, with_batch_array(output_layer))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    model.attrs[RESIZE_OUTPUT] = set_output_dim("output_layer")
    return model
