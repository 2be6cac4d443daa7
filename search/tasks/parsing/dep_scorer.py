"""Dependency scores: spaCy's (primary, punctuation excluded) and CoNLL-2018 style.

Inputs: per sentence, gold and predicted heads (corpus convention: 0-based head
index, -1 for a root, None = missing) and labels (strings, None = missing).
Gold and predicted tokenisation are the same (gold tokens).

spaCy (``parser_score`` -> ``Scorer.score_deps`` with ``ignore_labels=("p", "punct")``,
labels lower-cased): the gold arcs are the set of (token, head, label) over tokens
whose gold label is present and not ignored; the predicted arcs the set over tokens
whose gold is present and whose *predicted* label is not ignored (so a gold-punct
token predicted "dep" is a false positive, a predicted "punct" on a non-punct word
a false negative). UAS / LAS are the F-scores of those sets (unlabelled: without
the label); with gold tokens and no punct mismatches this is plain accuracy over
the non-punct words. Per-label: P/R/F of the arcs with that label. Values are
fractions (spaCy's convention; multiply by 100 for the usual percentages).

CoNLL-2018 (``conll18_ud_eval.py`` on gold tokens): accuracy over *all* words with
a gold head, punctuation included; LAS compares only the universal part of the
label (``nmod:poss`` -> ``nmod``).
"""

from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .prf import PRF

IGNORE_LABELS = ("p", "punct")


def _norm(label: Optional[str], lowercase: bool) -> Optional[str]:
    if label is None or label == "":
        return None
    return label.lower() if lowercase else label


def _head(i: int, h: int) -> int:
    return i if h == -1 else h


def score_deps(
    gold_heads: Sequence[Sequence[Optional[int]]],
    gold_labels: Sequence[Sequence[Optional[str]]],
    pred_heads: Sequence[Sequence[Optional[int]]],
    pred_labels: Sequence[Sequence[Optional[str]]],
    ignore_labels: Iterable[str] = IGNORE_LABELS,
    lowercase: bool = True,
) -> Dict:
    """Returns {"dep_uas", "dep_las", "dep_las_per_type" (label -> {p, r, f}),
    "conll_uas", "conll_las", "n_words", "n_scored"}; scores are fractions, None when
    there was nothing to score."""
    if not (len(gold_heads) == len(gold_labels) == len(pred_heads) == len(pred_labels)):
        raise ValueError("gold/pred heads/labels must have one entry per sentence")
    ignore = {lab.lower() if lowercase else lab for lab in ignore_labels}
    unlabelled = PRF()
    labelled = PRF()
    per_dep: Dict[str, PRF] = {}
    n_words = n_uas = n_las = 0
    for sent, (gh, gl, ph, pl) in enumerate(zip(gold_heads, gold_labels, pred_heads, pred_labels)):
        if not (len(gh) == len(gl) == len(ph) == len(pl)):
            raise ValueError(f"sentence {sent}: gold and predicted lengths differ")
        gold_deps: Set[Tuple[int, int, str]] = set()
        gold_by_dep: Dict[str, Set] = {}
        missing = set()
        for i, (h, lab) in enumerate(zip(gh, gl)):
            dep = _norm(lab, lowercase)
            if dep is None or h is None:
                missing.add(i)
                continue
            if dep not in ignore:
                arc = (i, _head(i, h), dep)
                gold_deps.add(arc)
                per_dep.setdefault(dep, PRF())
                gold_by_dep.setdefault(dep, set()).add(arc)
            # CoNLL-2018: every word with a gold head, universal labels
            n_words += 1
            p = ph[i]
            if p is not None and _head(i, p) == _head(i, h):
                n_uas += 1
                pdep = _norm(pl[i], lowercase)
                if pdep is not None and pdep.split(":")[0] == dep.split(":")[0]:
                    n_las += 1
        pred_deps: Set[Tuple[int, int, str]] = set()
        pred_by_dep: Dict[str, Set] = {}
        for i, (h, lab) in enumerate(zip(ph, pl)):
            if i in missing:
                continue
            dep = _norm(lab, lowercase)
            if dep in ignore:
                continue
            if h is None or dep is None:
                unlabelled.fp += 1
                labelled.fp += 1
                continue
            arc = (i, _head(i, h), dep)
            pred_deps.add(arc)
            per_dep.setdefault(dep, PRF())
            pred_by_dep.setdefault(dep, set()).add(arc)
        labelled.score_set(pred_deps, gold_deps)
        unlabelled.score_set({a[:2] for a in pred_deps}, {a[:2] for a in gold_deps})
        for dep, prf in per_dep.items():
            prf.score_set(pred_by_dep.get(dep, set()), gold_by_dep.get(dep, set()))
    scored = len(unlabelled) > 0
    return {
        "dep_uas": unlabelled.fscore if scored else None,
        "dep_las": labelled.fscore if scored else None,
        "dep_las_per_type": {k: v.to_dict() for k, v in per_dep.items()} if scored else None,
        "conll_uas": n_uas / n_words if n_words else None,
        "conll_las": n_las / n_words if n_words else None,
        "n_words": n_words,
        "n_scored": unlabelled.tp + unlabelled.fn,
    }


def score_examples(examples: Sequence, pred_heads: List, pred_labels: List, **kwargs) -> Dict:
    """score_deps against Examples' ``gold["heads"]`` / ``gold["deps"]``."""
    return score_deps(
        [eg.gold["heads"] for eg in examples],
        [eg.gold["deps"] for eg in examples],
        pred_heads,
        pred_labels,
        **kwargs,
    )


def sentence_starts(heads: Sequence[Optional[int]]) -> List[int]:
    """The sentence starts a parse implies (as spaCy derives doc.sents from the heads):
    the leftmost word under each root. Heads in the corpus convention (-1 = root);
    a word whose head chain does not reach a root counts as its own root."""
    n = len(heads)
    root_of = list(range(n))
    for i in range(n):
        j, seen = i, 0
        h = heads[j]
        while h is not None and h >= 0 and h != j and seen <= n:
            j = h
            seen += 1
            h = heads[j]
        root_of[i] = j
    left_edge: Dict[int, int] = {}
    for i, root in enumerate(root_of):
        left_edge[root] = min(left_edge.get(root, i), i)
    return sorted(set(left_edge.values()) | ({0} if n else set()))


def score_sentences(gold_starts: Sequence[Sequence[int]], pred_starts: Sequence[Sequence[int]], lengths: Sequence[int]) -> Dict:
    """spaCy's sents_p/r/f: P/R/F of the sentence spans (start, end) per document."""
    prf = PRF()
    for gold, pred, n in zip(gold_starts, pred_starts, lengths):
        prf.score_set(_spans(pred, n), _spans(gold, n))
    return {"sents_p": prf.precision, "sents_r": prf.recall, "sents_f": prf.fscore}


def _spans(starts: Sequence[int], n: int) -> Set[Tuple[int, int]]:
    bounds = sorted(set(starts) | {0}) + [n]
    return {(a, b) for a, b in zip(bounds, bounds[1:]) if a < b}
