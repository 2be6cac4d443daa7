from typing import Callable, List, Sequence, Tuple, Union, cast

import numpy
from thinc.api import Model, Ops
from thinc.types import Ints1d, Ints2d, Ragged

from ..features import Doc, attr_column
from ..registry import registry


@registry.layers("archsweep.FeatureExtractor.v1")
def FeatureExtractor(columns: Sequence[str], as_ragged: bool = False) -> Model[List[Doc], Union[List[Ints2d], Ragged]]:
    """Select the hashed attribute columns (e.g. ["NORM", "PREFIX"]) of each Doc.

    The hashing happened once when the corpus was read; this only slices. The
    batch's rows are gathered on the host and copied to the ops' device once per
    batch (never once per doc).

    as_ragged: return one Ragged (all tokens' rows, lengths per doc) instead of a
        list of per-doc arrays (views of one device array), for layers that work
        on the whole batch anyway (saves list2ragged's concatenation). Its lengths
        stay on the host (int32): the embedding layers only pass them along, and
        ragged2list then splits the batch without reading lengths back from the
        device (a synchronisation on a GPU).
    """
    indices = [attr_column(c) for c in columns]
    return Model(
        "extract_features",
        forward,
        attrs={"columns": list(columns), "indices": indices, "as_ragged": as_ragged},
    )


def batch_features(ops: Ops, docs: List[Doc], indices: Sequence[int]) -> Tuple[Ints2d, Ints1d]:
    """The batch's (n_tokens, len(indices)) uint64 rows on the ops' device, gathered
    on the host and copied once, and the int32 doc lengths on the host."""
    lengths = numpy.asarray([len(doc) for doc in docs], dtype="int32")
    rows = numpy.empty((int(lengths.sum()), len(indices)), dtype="uint64")
    if len(rows):
        numpy.take(numpy.concatenate([doc.features for doc in docs]), indices, axis=1, out=rows)
    return ops.asarray2i(cast(Ints2d, rows), dtype="uint64"), cast(Ints1d, lengths)


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Union[List[Ints2d], Ragged], Callable]:
    features, lengths = batch_features(model.ops, docs, model.attrs["indices"])
    if model.attrs.get("as_ragged", False):
        output: Union[List[Ints2d], Ragged] = Ragged(features, lengths)
    else:
        output, start = [], 0
        for length in lengths.tolist():  # views: no copies
            output.append(features[start : start + length])
            start += length

    def backprop(dY) -> List[Doc]:
        return []

    return output, backprop
