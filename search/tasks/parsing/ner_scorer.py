"""Entity precision / recall / F1 (exact span and label match), as spaCy's ``get_ner_prf``.

Returns spaCy's keys: ``ents_p``, ``ents_r``, ``ents_f`` (micro-averaged over all
entities) and ``ents_per_type`` = ``{label: {"p", "r", "f"}}``. As in spaCy:

* P = tp / (tp + fp + 1e-100), R = tp / (tp + fn + 1e-100),
  F = 2PR / (P + R + 1e-100), so a type with no predictions scores 0, not NaN;
* a type appears in ``ents_per_type`` if it occurs in the gold or the predictions;
* a sentence whose gold has no NER annotation at all (every tag missing) is skipped;
* a predicted entity covering a token whose gold tag is missing (None) is
  neither right nor wrong: it is ignored;
* with no entity in gold or predictions at all, every value is None.

Scores are fractions (0..1), like spaCy's scorer.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple, TypedDict

from .prf import PRF

Entity = Tuple[int, int, str]


class NerScores(TypedDict):
    """The scores (None for every key when there is no entity at all)."""

    ents_p: Optional[float]
    ents_r: Optional[float]
    ents_f: Optional[float]
    ents_per_type: Optional[Dict[str, Dict[str, float]]]  # {label: {"p", "r", "f"}}


def score_entities(
    predicted: Iterable[Sequence[Entity]],
    gold: Iterable[Sequence[Entity]],
    gold_tags: Optional[Iterable[Optional[Sequence[Optional[str]]]]] = None,
) -> NerScores:
    """Score predicted against gold entities, one list of (start, end, label) per sentence.

    gold_tags (optional, aligned with the sentences): each sentence's gold
    per-token tags (None = missing annotation), for the missing-annotation
    rules above; None for a sentence means fully annotated.
    """
    per_type: Dict[str, PRF] = {}
    tags_iter = iter(gold_tags) if gold_tags is not None else None
    for pred_ents, gold_ents in zip(predicted, gold):
        tags = next(tags_iter, None) if tags_iter is not None else None
        if tags is not None and len(tags) > 0 and all(t is None for t in tags):
            continue
        golds = {(label, start, end) for start, end, label in gold_ents}
        for start, end, label in pred_ents:
            prf = per_type.setdefault(label, PRF())
            if tags is not None and any(t is None for t in tags[start:end]):
                continue
            key = (label, start, end)
            if key in golds:
                prf.tp += 1
                golds.remove(key)
            else:
                prf.fp += 1
        for label, _, _ in golds:
            per_type.setdefault(label, PRF()).fn += 1
    totals = PRF()
    for prf in per_type.values():
        totals += prf
    if len(totals) == 0:
        return {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}
    return {
        "ents_p": totals.precision,
        "ents_r": totals.recall,
        "ents_f": totals.fscore,
        "ents_per_type": {label: prf.to_dict() for label, prf in per_type.items()},
    }


def score_examples(examples: Sequence, predicted: Sequence[Sequence[Entity]], key: str = "entities") -> NerScores:
    """Score predictions against Examples read by ``search.iob2.read_iob2``
    (gold spans in ``eg.gold["entities"]``, tags in ``eg.gold["ner"]``)."""
    if len(examples) != len(predicted):
        raise ValueError(f"{len(predicted)} predictions for {len(examples)} examples")
    tags: List[Optional[Sequence[Optional[str]]]] = [eg.gold.get("ner") for eg in examples]
    return score_entities(predicted, [eg.gold[key] for eg in examples], tags)
