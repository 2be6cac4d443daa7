"""The tagger component: one tag per token (UPOS or XPOS) from spacy.Tagger.v1."""

from typing import Any, Dict, List, Sequence, Tuple, cast

import numpy
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

from archs import registry
from archs.features import Doc
from archs.outputs import resize_output

from ..corpora.example import Example
from ..training.pipeline import Component


class TaggerComponent(Component):
    """Predicts one tag per token from gold annotation `label_attr` ("upos" or "xpos")."""

    SCORE_KEYS = {"upos": "pos_acc", "xpos": "tag_acc"}

    def __init__(self, name: str, model: Model, label_attr: str) -> None:
        super().__init__(name, model)
        if label_attr not in self.SCORE_KEYS:
            raise ValueError(
                f"components.{name}.label_attr: expected one of {sorted(self.SCORE_KEYS)}, got {label_attr!r}"
            )
        self.label_attr = label_attr
        self._labels: List[str] = []
        self._label_ids: Dict[str, int] = {}
        self._gold_key: Tuple[Any, ...] = ("tagger_gold_ids", label_attr, object())

    @property
    def labels(self) -> List[str]:
        return list(self._labels)

    @property
    def score_key(self) -> str:
        return self.SCORE_KEYS[self.label_attr]

    def set_labels(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)
        self._label_ids = {label: i for i, label in enumerate(self._labels)}
        # a new key per label set: ids cached on examples under an older one are not reused
        self._gold_key = ("tagger_gold_ids", self.label_attr, object())
        try:
            resize_output(self.model, len(self._labels))
        except ValueError as err:
            raise ValueError(f"components.{self.name}.model: {err} ({self.label_attr} labels)") from None

    def initialize(self, examples: Sequence[Example]) -> None:
        labels = sorted({tag for eg in examples for tag in eg.gold[self.label_attr] if tag is not None})
        if not labels:
            raise ValueError(f"components.{self.name}: the training data has no {self.label_attr} annotation")
        self.set_labels(labels)
        super().initialize(examples)

    def example_gold_ids(self, eg: Example) -> numpy.ndarray:
        """Label index per token of one example (-1 where the gold tag is missing or
        unseen), computed from the strings once and cached on the example."""
        key = self._gold_key
        ids = eg.cache.get(key)
        if ids is None:
            get = self._label_ids.get
            ids = numpy.fromiter(
                (get(tag, -1) if tag is not None else -1 for tag in eg.gold[self.label_attr]),
                dtype="int32",
                count=len(eg),
            )
            eg.cache[key] = ids
        return ids

    def gold_ids(self, examples: Sequence[Example]) -> numpy.ndarray:
        """Label index per token of the batch, -1 where the gold tag is missing or unseen (host)."""
        if not examples:
            return numpy.zeros((0,), dtype="int32")
        return numpy.concatenate([self.example_gold_ids(eg) for eg in examples])

    def get_loss(self, examples: Sequence[Example], outputs: List[Floats2d]) -> Tuple[Any, List[Floats2d]]:
        """spaCy's tagger loss: d = probs - onehot(gold), not normalised; zero
        for missing tags; loss = sum(d**2), left on the device (a 0-d array or
        scalar; the training loop reads it back once per evaluation).

        The gold indices are assembled on the host and copied to the device once."""
        ops = self.model.ops
        probs = ops.flatten(outputs)
        gold = self.gold_ids(examples)
        known = gold >= 0
        d_probs = probs.copy()
        n = len(gold)
        if known.all():
            index = ops.asarray1i(cast(Ints1d, gold))
            d_probs[ops.xp.arange(n), index] -= 1.0
        else:
            rows = numpy.nonzero(known)[0].astype("int32")
            missing = numpy.nonzero(~known)[0].astype("int32")
            index = ops.asarray1i(cast(Ints1d, numpy.concatenate([rows, gold[rows], missing])))
            k = len(rows)
            d_probs[index[:k], index[k : 2 * k]] -= 1.0
            d_probs[index[2 * k :]] = 0.0
        loss = (d_probs**2).sum()  # type: ignore[call-overload]  # Thinc's Floats2d.sum overloads omit the full reduction
        lengths = cast(Ints1d, numpy.asarray([len(eg) for eg in examples], dtype="int32"))
        return loss, ops.unflatten(d_probs, lengths)

    def predict(self, docs: List[Doc]) -> List[List[str]]:
        outputs = self.model.predict(docs)
        return self.decode(outputs)

    def decode(self, outputs: List[Floats2d]) -> List[List[str]]:
        if not outputs:
            return []
        ops = self.model.ops
        # one argmax and one device-to-host copy per batch, not per doc
        guesses = ops.to_numpy(ops.flatten(outputs).argmax(axis=1)).tolist()
        labels = self._labels
        tags, start = [], 0
        for y in outputs:
            tags.append([labels[i] for i in guesses[start : start + len(y)]])
            start += len(y)
        return tags

    def score(self, examples: Sequence[Example], predictions: Sequence[List[str]]) -> Dict[str, float]:
        return score_tags(examples, predictions, self.label_attr)


def score_tags(examples: Sequence[Example], predictions: Sequence[List[str]], label_attr: str) -> Dict[str, float]:
    """Tag accuracy over the tokens with a gold `label_attr` ("upos": pos_acc, "xpos": tag_acc)."""
    correct = total = 0
    for eg, tags in zip(examples, predictions):
        for gold, guess in zip(eg.gold[label_attr], tags):
            if gold is not None:
                total += 1
                correct += gold == guess
    return {TaggerComponent.SCORE_KEYS[label_attr]: correct / total if total else 0.0}


@registry.factories("tagger")
def make_tagger(name: str, model: Model, label_attr: str = "upos") -> TaggerComponent:
    """A tagger; label_attr picks the CoNLL-U column it learns: "upos" or "xpos"."""
    return TaggerComponent(name, model, label_attr)
