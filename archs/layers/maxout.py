from typing import Callable, Optional, Tuple

import numpy
from thinc.api import Model, glorot_uniform_init, zero_init
from thinc.layers.maxout import forward as array_forward
from thinc.layers.maxout import init
from thinc.types import Floats2d
from thinc.util import partial

from ..registry import registry


@registry.layers("archsweep.Maxout.v1")
def Maxout(nO: Optional[int] = None, nI: Optional[int] = None, nP: int = 3) -> Model[Floats2d, Floats2d]:
    """Thinc's `Maxout` layer (same name, dims, params W (nO, nP, nI) and b (nO, nP),
    initialisation), whose CPU path takes a compiled kernel in its backward pass:
    one that routes the gradient to the chosen pieces and
    sums the bias gradient (half the time of Thinc's two passes). On other devices
    it is Thinc's own array code."""
    return Model(
        "maxout",
        forward,
        init=partial(init, glorot_uniform_init, zero_init),
        dims={"nO": nO, "nI": nI, "nP": nP},
        params={"W": None, "b": None},
    )


def forward(model: Model[Floats2d, Floats2d], X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    if not isinstance(X, numpy.ndarray) or X.dtype != numpy.float32:
        return array_forward(model, X, is_train)
    from .. import cpu_kernels

    nO, nP, nI = model.get_dim("nO"), model.get_dim("nP"), model.get_dim("nI")
    W = model.ops.reshape2f(model.get_param("W"), nO * nP, nI)
    b = model.get_param("b").reshape(-1)
    Y = model.ops.gemm(X, W, trans2=True)
    Y += b
    best, which = model.ops.maxout(model.ops.reshape3f(Y, Y.shape[0], nO, nP))

    def backprop(d_best: Floats2d) -> Floats2d:
        dY = numpy.empty_like(Y)
        d_b = numpy.zeros(nO * nP, dtype=numpy.float32)
        cpu_kernels.backprop_bias_maxout(numpy.ascontiguousarray(d_best, dtype=numpy.float32), which, nP, dY, d_b)
        model.inc_grad("b", d_b.reshape(nO, nP))
        model.inc_grad("W", model.ops.gemm(dY, X, trans1=True).reshape(nO, nP, nI))
        return model.ops.gemm(dY, W)

    return best, backprop
