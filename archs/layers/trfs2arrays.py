from typing import Callable, List, Tuple, cast

from thinc.api import Model
from thinc.types import Floats2d, Ints1d, Ragged

from ..registry import registry
from .hf_transformer import TransformerData


@registry.layers("archsweep.trfs2arrays.v1")
def trfs2arrays(pooling: Model[Ragged, Floats2d], grad_factor: float) -> Model[List[TransformerData], List[Floats2d]]:
    """One vector per token from a transformer's wordpiece rows.

    pooling: reduces each token's group of wordpiece rows to one row
        (reduce_mean.v1, reduce_max.v1, reduce_sum.v1, reduce_first.v1, reduce_last.v1).
    grad_factor: multiplies the gradient sent back to the wordpieces (0 freezes the
        transformer for this listener; 1 is a plain gradient).
    A token with no wordpiece gets a zero vector and sends back no gradient.
    """
    return Model("trfs2arrays", forward, layers=[pooling], attrs={"grad_factor": grad_factor})


def forward(model: Model, trf_datas: List[TransformerData], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    ops = model.ops
    pooling = model.layers[0]
    factor = model.attrs["grad_factor"]
    width = max((t.tensor.shape[1] for t in trf_datas), default=0)
    # Every doc's aligned rows, one group per token; tokens without rows are left
    # out of the pooling (reduce_max/first/last refuse empty groups, mean divides by 0).
    rows, lengths, has_rows, n_tokens = [], [], [], []
    for trf in trf_datas:
        align_lengths = trf.align.lengths
        rows.append(trf.tensor[trf.align.dataXd])
        keep = align_lengths > 0
        lengths.append(align_lengths[keep])
        has_rows.append(keep)
        n_tokens.append(align_lengths.shape[0])
    all_lengths = ops.xp.concatenate(lengths) if lengths else ops.alloc1i(0)
    if int(all_lengths.shape[0]) == 0:
        outputs = [ops.alloc2f(n, width) for n in n_tokens]
        return outputs, lambda d_outputs: [ops.alloc2f(*t.tensor.shape) for t in trf_datas]
    pooled, backprop_pool = pooling(Ragged(ops.xp.concatenate(rows), all_lengths), is_train)
    outputs = []
    start = 0
    for keep, n in zip(has_rows, n_tokens):
        n_kept = int(keep.sum())
        y = ops.alloc2f(n, width)
        y[keep] = pooled[start : start + n_kept]
        outputs.append(y)
        start += n_kept

    def backprop(d_outputs: List[Floats2d]) -> List[Floats2d]:
        d_pooled = ops.xp.concatenate([d[keep] for d, keep in zip(d_outputs, has_rows)])
        d_rows = backprop_pool(d_pooled).dataXd
        d_tensors = []
        start = 0
        for trf in trf_datas:
            n_rows = trf.align.dataXd.shape[0]
            d_tensor = ops.alloc2f(*trf.tensor.shape)
            align_rows = cast(Ints1d, trf.align.dataXd)  # the alignment's data: row indices into the tensor
            ops.scatter_add(d_tensor, align_rows, d_rows[start : start + n_rows])
            if factor != 1.0:
                d_tensor *= factor
            d_tensors.append(d_tensor)
            start += n_rows
        return d_tensors

    return outputs, backprop
