"""Thinc's `with_array` for a batch given as a list of per-doc arrays, with the host
work done once per batch: the row layout (and the padding between docs) comes from
the arrays' shapes, so no lengths array travels to the device and none comes back
(thinc's list path copies the lengths to the device and reads them back to split the
output: a device synchronisation per call on a GPU), and padding is one scatter into
a zeroed array instead of a zero block per doc."""

from importlib import import_module
from typing import Callable, List, Optional, Sequence, Tuple, cast

import numpy
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

from ..registry import registry

# the module (thinc.layers.with_array, the name, is the function)
thinc_with_array = import_module("thinc.layers.with_array")


@registry.layers("archsweep.with_batch_array.v1")
def with_batch_array(layer: Model, pad: int = 0) -> Model:
    """Run `layer` over the batch's rows as one array; in and out: one array per doc.

    pad: zero rows before each non-empty doc and after the last (thinc's
        `with_array(layer, pad)` layout, e.g. a CNN's receptive field), so that
        windows never cross docs. The outputs are views of the layer's output.

    Same name, sublayer and dims as thinc's with_array (a model saved with either
    loads into the other); Ragged, Padded or array inputs go through thinc's code.
    """
    return Model(
        f"with_array({layer.name})",
        forward,
        init=thinc_with_array.init,
        layers=[layer],
        attrs={"pad": pad},
        dims={name: layer.maybe_get_dim(name) for name in layer.dim_names},
    )


def _layout(lengths: numpy.ndarray, pad: int) -> Tuple[numpy.ndarray, Optional[numpy.ndarray], int]:
    """Start row of each doc in the (padded) batch array, the padded row of every
    token (None without padding) and the number of rows, all on the host."""
    n = int(lengths.sum())
    if not pad:
        starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]).astype("int64")
        return starts, None, n
    nonempty = lengths > 0
    # a doc's tokens are shifted by one pad block per non-empty doc up to and including it
    shift = pad * numpy.cumsum(nonempty)
    flat_starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]).astype("int64")
    starts = flat_starts + shift
    rows = numpy.arange(n, dtype="int64") + numpy.repeat(shift, lengths)
    return starts, rows.astype("int32"), n + pad * (int(nonempty.sum()) + 1)


def _views(Y, starts: numpy.ndarray, lengths: numpy.ndarray) -> List:
    return [Y[s : s + n] for s, n in zip(starts.tolist(), lengths.tolist())]


def forward(model: Model, Xs, is_train: bool) -> Tuple[object, Callable]:
    if not isinstance(Xs, (list, tuple)):
        return thinc_with_array.forward(model, Xs, is_train)
    pad = int(model.attrs["pad"])
    lengths = numpy.asarray([len(x) for x in Xs], dtype="int64")
    if not len(Xs) or not lengths.any():
        # nothing to lay out: thinc's own handling of empty batches
        return thinc_with_array.forward(model, Xs, is_train)
    ops = model.ops
    layer = model.layers[0]
    starts, rows, n_rows = _layout(lengths, pad)
    X = ops.flatten(Xs)
    if rows is None:
        Y, get_dX = layer(X, is_train)
    else:
        rows_dev = ops.asarray1i(cast(Ints1d, rows))  # the one host-to-device copy of the layout
        Xp = ops.alloc((n_rows,) + X.shape[1:], dtype=X.dtype)
        Xp[rows_dev] = X
        Y, get_dX = layer(Xp, is_train)

    def backprop(dYs: Sequence[Floats2d]) -> List[Floats2d]:
        dY = ops.flatten(dYs)
        if rows is None:
            return _views(get_dX(dY), starts, lengths)
        dYp = ops.alloc((n_rows,) + dY.shape[1:], dtype=dY.dtype)
        dYp[rows_dev] = dY
        return _views(get_dX(dYp), starts, lengths)

    return _views(Y, starts, lengths), backprop
