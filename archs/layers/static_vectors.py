from functools import partial
from typing import Callable, List, Optional, Tuple, cast

import numpy
from thinc.api import Model, glorot_uniform_init
from thinc.types import Floats1d, Floats2d, Ragged

from ..features import Doc
from ..registry import registry
from ..vectors import Vectors


@registry.layers("archsweep.StaticVectors.v1")
def StaticVectors(vectors: Vectors, nO: Optional[int] = None) -> Model[List[Doc], Ragged]:
    """Look tokens up in a frozen vectors table and project them to nO with a
    learned W (nO, vector_dim). Unknown tokens get a zero row.

    The table is not a parameter (it is neither counted nor trained nor saved
    with the weights, as in spaCy, where it lives in the vocab).
    """
    return Model(
        "static_vectors",
        partial(forward, vectors),
        init=init,
        params={"W": None},
        dims={"nO": nO, "nM": vectors.shape[1]},
        attrs={"dropout_rate": 0.0, "vectors_name": vectors.name},
    )


def forward(vectors: Vectors, model: Model, docs: List[Doc], is_train: bool) -> Tuple[Ragged, Callable]:
    ops = model.ops
    W = cast(Floats2d, model.get_param("W"))  # (nO, nM), set by init
    lengths = ops.asarray1i([len(doc) for doc in docs])
    if not docs or int(sum(len(d) for d in docs)) == 0:
        return Ragged(ops.alloc2f(0, W.shape[0]), lengths), lambda dY: []
    # Rows are found and gathered on the host; only the batch's vectors move to the device.
    rows = numpy.concatenate([vectors.rows_for(doc.features) for doc in docs])
    V_host = vectors.data[rows]
    V_host[rows < 0] = 0
    V = ops.asarray2f(cast(Floats2d, V_host), dtype=None)  # the table's own dtype
    output = ops.gemm(V, W, trans2=True)
    mask: Optional[Floats1d] = None
    rate = model.attrs.get("dropout_rate")
    if is_train and rate:
        mask = cast(Floats1d, ops.get_dropout_mask((W.shape[0],), rate))
        output *= mask

    def backprop(dY: Ragged) -> List[Doc]:
        d_out = cast(Floats2d, dY.data if mask is None else dY.data * mask)  # the output's gradient: floats
        model.inc_grad("W", ops.gemm(d_out, V, trans1=True))
        return []

    return Ragged(output, lengths), backprop


def init(model: Model, X=None, Y=None) -> None:
    model.set_param("W", glorot_uniform_init(model.ops, (model.get_dim("nO"), model.get_dim("nM"))))
