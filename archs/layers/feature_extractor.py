from typing import Callable, List, Sequence, Tuple

from thinc.api import Model
from thinc.types import Ints2d

from ..features import Doc, attr_column
from ..registry import registry


@registry.layers("archsweep.FeatureExtractor.v1")
def FeatureExtractor(columns: Sequence[str]) -> Model[List[Doc], List[Ints2d]]:
    """Select the hashed attribute columns (e.g. ["NORM", "PREFIX"]) of each Doc.

    The hashing happened once when the corpus was read; this only slices.
    """
    indices = [attr_column(c) for c in columns]
    return Model("extract_features", forward, attrs={"columns": list(columns), "indices": indices})


def forward(model: Model[List[Doc], List[Ints2d]], docs: List[Doc], is_train: bool) -> Tuple[List[Ints2d], Callable]:
    indices = model.attrs["indices"]
    features = [model.ops.asarray(doc.features[:, indices]) for doc in docs]

    def backprop(dY: List[Ints2d]) -> List[Doc]:
        return []

    return features, backprop
