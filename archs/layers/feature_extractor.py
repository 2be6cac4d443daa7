from typing import Callable, List, Sequence, Tuple, Union

import numpy
from thinc.api import Model
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
        on the whole batch anyway (saves list2ragged's concatenation). The rows and
        the lengths travel in the same single copy.
    """
    indices = [attr_column(c) for c in columns]
    return Model(
        "extract_features",
        forward,
        attrs={"columns": list(columns), "indices": indices, "as_ragged": as_ragged},
    )


def batch_features(ops, docs: List[Doc], indices: Sequence[int]) -> Tuple[Ints2d, Ints1d, List[int]]:
    """The batch's (n_tokens, len(indices)) uint64 rows and the int32 doc lengths on
    the ops' device, from one host buffer copied once; also the lengths on the host."""
    lengths = [len(doc) for doc in docs]
    n, k = sum(lengths), len(indices)
    host = numpy.empty((n * k + len(docs),), dtype="uint64")
    rows = host[: n * k].reshape((n, k))
    if docs and n:
        numpy.take(numpy.concatenate([doc.features for doc in docs]), indices, axis=1, out=rows)
    host[n * k :] = lengths
    device = ops.asarray(host, dtype="uint64")
    features = device[: n * k].reshape((n, k))
    device_lengths = device[n * k :].astype("int32")
    return features, device_lengths, lengths


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Union[List[Ints2d], Ragged], Callable]:
    features, device_lengths, lengths = batch_features(model.ops, docs, model.attrs["indices"])
    if model.attrs.get("as_ragged", False):
        output: Union[List[Ints2d], Ragged] = Ragged(features, device_lengths)
    else:
        output, start = [], 0
        for length in lengths:  # views: no copies
            output.append(features[start : start + length])
            start += length

    def backprop(dY) -> List[Doc]:
        return []

    return output, backprop
