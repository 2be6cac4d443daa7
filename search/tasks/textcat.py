"""Text-classification components (`textcat`: exclusive classes, `textcat_multilabel`) and their scores.

Loss (spaCy's textcat loss): d_scores = (scores - truths) / n_docs,
zeroed where a label is missing for an example; loss = mean over docs of the sum of
d_scores**2. A label is *known* for an example when the example names it, or when
its annotation is exhaustive (a plain label column, see search.corpora.textcat) —
then every unnamed label is a known negative. An exclusive component treats a
non-exhaustive example's scores as given (missing labels stay missing).

Scores (keys of the dev scores; choose the primary one with [training.score_weights]):

* ``textcat``: ``cats_acc`` (argmax accuracy over examples with a known gold class),
  ``cats_macro_f`` (F1 per label, averaged over labels), ``cats_macro_p``, ``cats_macro_r``.
* ``textcat_multilabel`` (a label is predicted when its score >= ``threshold``):
  ``cats_micro_f``/``_p``/``_r`` (pooled over all known label decisions), ``cats_macro_f``/
  ``_p``/``_r``, ``cats_macro_auc`` (ROC AUC per label, averaged over the labels whose
  known gold has both classes).
* with ``per_label_scores = true`` also ``cats_f_LABEL`` and, multi-label, ``cats_auc_LABEL``.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

import numpy
from thinc.api import Model
from thinc.types import Floats2d, Floats3d

from archs import registry
from archs.features import Doc
from archs.outputs import resize_output

from ..corpora.example import Example
from ..training.pipeline import INIT_SAMPLE, Component


class TextCategorizer(Component):
    """Scores every label for each text; `multi_label` picks the decision rule and scores."""

    def __init__(self, name: str, model: Model, *, multi_label: bool, threshold: float, per_label_scores: bool) -> None:
        super().__init__(name, model)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"components.{name}.threshold: expected a number between 0 and 1, got {threshold}")
        self.multi_label = multi_label
        self.threshold = threshold
        self.per_label_scores = per_label_scores
        self._labels: List[str] = []
        self._label_ids: Dict[str, int] = {}
        self._truths_key: Tuple[Any, ...] = ("textcat_truths", name, object())

    @property
    def labels(self) -> List[str]:
        return list(self._labels)

    def set_labels(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)
        self._label_ids = {label: i for i, label in enumerate(self._labels)}
        # a new key per label set: rows cached on examples under an older one are not reused
        self._truths_key = ("textcat_truths", self.name, object())
        try:
            resize_output(self.model, len(self._labels))
        except ValueError as err:
            raise ValueError(f"components.{self.name}.model: {err}") from None

    def initialize(self, examples: Sequence[Example]) -> None:
        labels = sorted({label for eg in examples for label in _cats(eg, self.name)})
        if not labels:
            raise ValueError(f"components.{self.name}: the training data has no labels")
        if not self.multi_label and len(labels) < 2:
            raise ValueError(f"components.{self.name}: exclusive classes need at least 2 labels, the data has {labels}")
        self.set_labels(labels)
        docs = [eg.doc for eg in examples[:INIT_SAMPLE]]
        truths, _ = self.truths(examples[:INIT_SAMPLE])
        self.model.initialize(X=docs, Y=self.model.ops.asarray2f(cast(Floats2d, truths)))

    def example_truths(self, eg: Example) -> numpy.ndarray:
        """(2, n_labels) float32: one example's gold scores and its not-missing mask
        (1 = known), computed from its annotation once and cached on the example."""
        key = self._truths_key
        row = eg.cache.get(key)
        if row is None:
            row = numpy.zeros((2, len(self._labels)), dtype="float32")
            ids = self._label_ids
            cats = _cats(eg, self.name)
            if eg.gold.get("cats_exhaustive", False):
                row[1] = 1.0
            for label, value in cats.items():
                j = ids.get(label)
                if j is not None:  # a label unseen in training is ignored
                    row[0, j] = value
                    row[1, j] = 1.0
            eg.cache[key] = row
        return row

    def _batch_truths(self, examples: Sequence[Example]) -> numpy.ndarray:
        """(2, n, n_labels): gold scores and not-missing mask of a batch, on the host."""
        if not examples:
            return numpy.zeros((2, 0, len(self._labels)), dtype="float32")
        return numpy.stack([self.example_truths(eg) for eg in examples], axis=1)

    def truths(self, examples: Sequence[Example]) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """(n, n_labels) gold scores and a not-missing mask (1 = known), on the host."""
        both = self._batch_truths(examples)
        return both[0], both[1]

    def get_loss(self, examples: Sequence[Example], scores: Floats2d) -> Tuple[Any, Floats2d]:
        """The loss stays on the device (a float64 scalar: the float32 sum divided as
        the host did); the gold scores and mask go to the device in one copy."""
        ops = self.model.ops
        both = ops.asarray3f(cast(Floats3d, self._batch_truths(examples)))
        n = max(len(examples), 1)
        d_scores = (scores - both[0]) / n
        d_scores *= both[1]
        loss = (d_scores**2).sum().astype("float64") / n
        return loss, d_scores

    def predict(self, docs: List[Doc]) -> List[Dict[str, float]]:
        scores = self.model.ops.to_numpy(self.model.predict(docs))
        return [dict(zip(self._labels, row.tolist())) for row in scores]

    def score(self, examples: Sequence[Example], predictions: Sequence[Dict[str, float]]) -> Dict[str, float]:
        truths, known = self.truths(examples)
        scores = numpy.zeros_like(truths)
        for i, pred in enumerate(predictions):
            if pred:  # an all-empty batch gets no prediction
                scores[i] = [pred.get(label, 0.0) for label in self._labels]
        if self.multi_label:
            return multilabel_scores(truths, known, scores, self._labels, self.threshold, self.per_label_scores)
        return exclusive_scores(truths, known, scores, self._labels, self.per_label_scores)


def _cats(eg: Example, name: str) -> Dict[str, float]:
    cats = eg.gold.get("cats")
    if cats is None:
        raise ValueError(f"components.{name}: {eg.source or 'an example'} has no text-classification annotation")
    return cats


def _prf(tp: float, fp: float, fn: float) -> Tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def exclusive_scores(
    truths: numpy.ndarray, known: numpy.ndarray, scores: numpy.ndarray, labels: Sequence[str], per_label: bool = False
) -> Dict[str, float]:
    """Accuracy and macro P/R/F1 of the argmax class, over the examples whose gold
    class is known (all labels known and exactly one positive, >= 0.5)."""
    usable = (known.min(axis=1) > 0) & ((truths >= 0.5).sum(axis=1) == 1) if len(truths) else numpy.zeros(0, bool)
    gold = truths[usable].argmax(axis=1)
    guess = scores[usable].argmax(axis=1)
    result = {"cats_acc": float((gold == guess).mean()) if len(gold) else 0.0}
    ps, rs, fs = [], [], []
    for j, label in enumerate(labels):
        tp = float(((guess == j) & (gold == j)).sum())
        p, r, f = _prf(tp, float(((guess == j) & (gold != j)).sum()), float(((guess != j) & (gold == j)).sum()))
        ps.append(p)
        rs.append(r)
        fs.append(f)
        if per_label:
            result[f"cats_f_{label}"] = f
    n = max(len(labels), 1)
    result.update(cats_macro_p=sum(ps) / n, cats_macro_r=sum(rs) / n, cats_macro_f=sum(fs) / n)
    return result


def multilabel_scores(
    truths: numpy.ndarray,
    known: numpy.ndarray,
    scores: numpy.ndarray,
    labels: Sequence[str],
    threshold: float = 0.5,
    per_label: bool = False,
) -> Dict[str, float]:
    """Micro and macro P/R/F1 at `threshold` and ROC AUC per label, each label
    over the examples where it is known."""
    mask = known > 0
    gold = truths >= 0.5
    guess = scores >= threshold
    tp_all = fp_all = fn_all = 0.0
    ps, rs, fs, aucs = [], [], [], []
    result: Dict[str, float] = {}
    for j, label in enumerate(labels):
        m = mask[:, j]
        g, s = gold[m, j], guess[m, j]
        tp, fp, fn = float((g & s).sum()), float((~g & s).sum()), float((g & ~s).sum())
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        p, r, f = _prf(tp, fp, fn)
        ps.append(p)
        rs.append(r)
        fs.append(f)
        auc = roc_auc(g, scores[m, j])
        if auc is not None:
            aucs.append(auc)
        if per_label:
            result[f"cats_f_{label}"] = f
            result[f"cats_auc_{label}"] = auc if auc is not None else 0.0
    n = max(len(labels), 1)
    p, r, f = _prf(tp_all, fp_all, fn_all)
    result.update(
        cats_micro_p=p,
        cats_micro_r=r,
        cats_micro_f=f,
        cats_macro_p=sum(ps) / n,
        cats_macro_r=sum(rs) / n,
        cats_macro_f=sum(fs) / n,
        cats_macro_auc=sum(aucs) / len(aucs) if aucs else 0.0,
    )
    return result


def roc_auc(gold: numpy.ndarray, scores: numpy.ndarray) -> Optional[float]:
    """Area under the ROC curve (the Mann-Whitney U statistic, ties counted half);
    None when the gold has only one class."""
    gold = numpy.asarray(gold, dtype=bool)
    n_pos = int(gold.sum())
    n_neg = len(gold) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = numpy.argsort(scores, kind="mergesort")
    sorted_scores = numpy.asarray(scores)[order]
    ranks = numpy.empty(len(scores), dtype="float64")
    # average ranks (1-based) over ties
    _, start, counts = numpy.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = numpy.repeat(avg, counts)
    return float((ranks[gold].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@registry.factories("textcat")
def make_textcat(name: str, model: Model, per_label_scores: bool = False) -> TextCategorizer:
    """One class per text (the highest score). Scores: cats_acc, cats_macro_f, ...
    per_label_scores: also report cats_f_LABEL for every label."""
    return TextCategorizer(name, model, multi_label=False, threshold=0.5, per_label_scores=per_label_scores)


@registry.factories("textcat_multilabel")
def make_textcat_multilabel(
    name: str, model: Model, threshold: float = 0.5, per_label_scores: bool = False
) -> TextCategorizer:
    """Any number of classes per text (each label whose score >= threshold).
    Scores: cats_micro_f, cats_macro_f, cats_macro_auc, ...
    per_label_scores: also report cats_f_LABEL and cats_auc_LABEL for every label."""
    return TextCategorizer(name, model, multi_label=True, threshold=threshold, per_label_scores=per_label_scores)
