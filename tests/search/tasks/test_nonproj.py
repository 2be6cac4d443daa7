"""Pseudo-projective lifting / restoring (search/tasks/parsing/nonproj.py)."""

from pathlib import Path

import pytest

from search.corpora.conllu import read_conllu
from search.tasks.parsing.nonproj import decompose, deprojectivize, is_decorated, is_projective, nonproj_arcs, projectivize

TRAIN_SAMPLE = Path(__file__).resolve().parents[3] / "data" / "ud_english_ewt" / "en_ewt-ud-train.sample.conllu"

# "A hearing is scheduled on the issue today": "issue" (6) depends on "hearing" (1),
# across "is scheduled" (2, 3) -- the textbook non-projective arc.
HEARING_HEADS = [1, 3, 3, -1, 6, 6, 1, 3]
HEARING_LABELS = ["det", "nsubj:pass", "aux:pass", "root", "case", "det", "nmod", "obl"]


def test_is_projective_and_nonproj_arcs():
    assert is_projective([1, -1, 1])
    assert is_projective([-1])
    assert not is_projective(HEARING_HEADS)
    assert nonproj_arcs(HEARING_HEADS) == [6]
    # missing heads count as dominated (spaCy): no crossing can be proven
    assert is_projective([None, -1, 1])


def test_projectivize_lifts_to_grandparent_and_round_trips():
    heads, labels = projectivize(HEARING_HEADS, HEARING_LABELS)
    assert heads == [1, 3, 3, -1, 6, 6, 3, 3]
    assert labels[6] == "nmod||nsubj:pass"
    assert [lab for i, lab in enumerate(labels) if i != 6] == [lab for i, lab in enumerate(HEARING_LABELS) if i != 6]
    assert is_projective(heads)
    assert deprojectivize(heads, labels) == (HEARING_HEADS, HEARING_LABELS)
    assert decompose("nmod||nsubj:pass") == ("nmod", "nsubj:pass")
    assert is_decorated("a||b") and not is_decorated("nmod") and not is_decorated(None)


def test_projective_trees_are_unchanged():
    heads, labels = [1, -1, 1, 2], ["det", "root", "obj", "amod"]
    assert projectivize(heads, labels) == (heads, labels)
    assert deprojectivize(heads, labels) == (heads, labels)


def test_lift_twice_smallest_arc_first():
    # 0 <- 2 (root), 4 -> 1 (crosses 2), 1 -> 3 ... build: root 2; 2 -> 0, 2 -> 4; 4 -> 1; 0 -> 3
    heads = [2, 4, -1, 0, 2]
    labels = ["nsubj", "obj", "root", "acl", "xcomp"]
    assert set(nonproj_arcs(heads)) == {1, 3}
    ph, pl = projectivize(heads, labels)
    assert is_projective(ph)
    assert ph == [2, 2, -1, 2, 2]
    assert pl == ["nsubj", "obj||xcomp", "root", "acl||nsubj", "xcomp"]
    assert deprojectivize(ph, pl) == (heads, labels)


def test_restore_searches_breadth_first_left_to_right():
    # 2 -> 0 covers 1 (head 3): lifted to 3, "x||nsubj"; restoring searches 3's children
    # left to right for "nsubj": 0 comes before 1, so the original head is found
    heads, labels = [3, 3, 0, -1], ["nsubj", "nsubj", "x", "root"]
    ph, pl = projectivize(heads, labels)
    assert (ph, pl) == ([3, 3, 3, -1], ["nsubj", "nsubj", "x||nsubj", "root"])
    assert deprojectivize(ph, pl) == (heads, labels)


def test_lossy_round_trip_is_what_spacy_does():
    # 3 -> 1 and 2 -> 4 cross; both are lifted to 5 ("x||nsubj", "y||obj"). Restoring
    # 3 finds the *first* nsubj child of 5 (token 0), not its original head 1: lossy
    heads = [5, 5, 4, 1, 5, -1]
    labels = ["nsubj", "nsubj", "y", "x", "obj", "root"]
    ph, pl = projectivize(heads, labels)
    assert ph == [5, 5, 5, 5, 5, -1]
    assert pl == ["nsubj", "nsubj", "y||obj", "x||nsubj", "obj", "root"]
    dh, dl = deprojectivize(ph, pl)
    assert dl == labels
    assert dh == [5, 5, 4, 0, 5, -1]


def test_lift_of_root_dependent_makes_a_root():
    # two roots (two sentences in one tree): 2 -> 0 covers root 1: lifting 0's head
    # (a root) makes 2 a root itself (spaCy's _lift)
    heads = [-1, -1, 0]
    labels = ["root", "root", "dep"]
    ph, pl = projectivize(heads, labels)
    assert ph == [-1, -1, -1]
    assert pl == ["root", "root", "dep||root"]
    dh, dl = deprojectivize(ph, pl)
    assert dl == labels and dh == [-1, -1, -1]  # lossy: the BFS starts at the token itself


def test_missing_heads_and_errors():
    heads = [None, 3, 3, -1, 6, 6, 1, None]
    labels = [None, "nsubj", "aux", "root", "case", "det", "nmod", None]
    ph, pl = projectivize(heads, labels)
    assert ph[0] is None and ph[7] is None
    assert is_projective(ph)
    assert deprojectivize(ph, pl) == (heads, labels)
    with pytest.raises(ValueError, match="cycle"):
        is_projective([3, 2, 1, -1])  # 1 -> 2 -> 1 inside the arc 3 -> 0
    with pytest.raises(ValueError):
        projectivize([0, -1], ["a"])
    with pytest.raises(ValueError, match="outside"):
        projectivize([5, -1], ["a", "root"])


def test_round_trip_on_train_sample():
    examples = read_conllu(TRAIN_SAMPLE)
    n_nonproj = n_round_trip = n_round_trip_nonproj = 0
    lossy = []
    for eg in examples:
        heads, labels = eg.gold["heads"], eg.gold["deps"]
        nonproj = not is_projective(heads)
        ph, pl = projectivize(heads, labels)
        assert is_projective(ph), eg.source
        if not nonproj:
            assert (ph, pl) == (list(heads), list(labels))
        ok = deprojectivize(ph, pl) == (list(heads), list(labels))
        n_nonproj += nonproj
        n_round_trip += ok
        n_round_trip_nonproj += ok and nonproj
        if not ok:
            lossy.append(eg.source)
    print(
        f"\n{len(examples)} sentences: {n_nonproj} non-projective; {n_round_trip} round-trip exactly "
        f"({n_round_trip_nonproj} of the non-projective ones); lossy: {lossy}"
    )
    assert len(examples) == 600
    assert n_nonproj == 32
    assert n_round_trip == 598 and n_round_trip_nonproj == 30
