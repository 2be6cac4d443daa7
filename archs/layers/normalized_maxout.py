from typing import Optional

from thinc.api import Dropout, Model, chain
from thinc.types import Floats2d

from ..registry import registry
from .layer_norm import LayerNorm
from .maxout import Maxout


@registry.layers("archsweep.NormalizedMaxout.v1")
def NormalizedMaxout(nO: Optional[int] = None, nI: Optional[int] = None, nP: int = 3, *, dropout: Optional[float] = None) -> Model[Floats2d, Floats2d]:
    """Thinc's `Maxout(nO, nI, nP, dropout=dropout, normalize=True)`, the same
    layers in the same tree (maxout >> layernorm, then >> dropout when a rate is
    given), with archsweep's `Maxout` and `LayerNorm` (compiled on the CPU)."""
    model: Model[Floats2d, Floats2d] = chain(Maxout(nO, nI, nP=nP), LayerNorm(nI=nO))
    if dropout is not None:
        model = chain(model, Dropout(dropout))
    return model
