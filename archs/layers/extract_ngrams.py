"""Bag-of-n-grams features of each Doc: unique hashed n-gram keys with their counts."""

from typing import Callable, List, Tuple, cast

import numpy
from thinc.api import Model, NumpyOps
from thinc.types import Floats1d, Ints1d

from ..features import Doc, attr_column
from ..registry import registry

OutT = Tuple[Ints1d, Floats1d, Ints1d]

_HOST = NumpyOps()


@registry.layers("archsweep.extract_ngrams.v1")
def extract_ngrams(ngram_size: int, attr: str = "ORTH") -> Model[List[Doc], OutT]:
    """Per doc: the attribute's hashed values (unigrams) and, for n = 2..ngram_size,
    Thinc's `ops.ngrams(n, ...)` keys (a 64-bit hash of n consecutive values);
    the unique keys with their counts as values, and one length per doc — the
    input of a SparseLinear layer, as spaCy's extract_ngrams.

    The keys are computed on the host (they come from the Docs' host feature
    matrices) and moved to the current ops' device once per batch.
    """
    if ngram_size < 1:
        raise ValueError(f"ngram_size must be at least 1, got {ngram_size}")
    return Model("extract_ngrams", forward, attrs={"ngram_size": ngram_size, "column": attr_column(attr), "attr": attr})


def forward(model: Model[List[Doc], OutT], docs: List[Doc], is_train: bool) -> Tuple[OutT, Callable]:
    column = model.attrs["column"]
    n_max = model.attrs["ngram_size"]
    batch_keys, batch_vals, lengths = [], [], []
    for doc in docs:
        unigrams = numpy.ascontiguousarray(doc.features[:, column])
        grams = [unigrams]
        for n in range(2, n_max + 1):
            if len(unigrams) >= n:
                grams.append(_HOST.ngrams(n, unigrams))
        keys, counts = numpy.unique(numpy.concatenate(grams), return_counts=True)
        batch_keys.append(keys)
        batch_vals.append(counts)
        lengths.append(len(keys))
    ops = model.ops
    keys = numpy.concatenate(batch_keys) if batch_keys else numpy.zeros((0,), dtype="uint64")
    vals = numpy.concatenate(batch_vals).astype("float32") if batch_vals else numpy.zeros((0,), dtype="float32")
    out = (
        ops.asarray1i(cast(Ints1d, keys), dtype="uint64"),
        ops.asarray1f(cast(Floats1d, vals)),
        ops.asarray1i(lengths),
    )

    def backprop(dY: OutT) -> List[Doc]:
        return []

    return out, backprop
