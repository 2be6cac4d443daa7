"""search.tasks.parsing.ner (BILUO transition system + dynamic oracle) and search.tasks.parsing.ner_scorer,
on the bundled UNER English-EWT sample and hand-made cases.

The oracle's costs are checked against an independent brute-force search that
only uses the system's public moves (valid_mask/apply/decode): the minimum
achievable FP+FN from any state, memoised on what the future depends on."""

import random
from functools import lru_cache
from pathlib import Path

import numpy
import pytest

from search.corpora.iob2 import read_iob2
from search.tasks.parsing.ner import INVALID_COST, BiluoSystem, State
from search.tasks.parsing.ner_scorer import PRF, score_entities, score_examples

REPO = Path(__file__).resolve().parents[3]
NER_TRAIN = REPO / "data" / "uner_english_ewt" / "en_ewt-ud-train.approx.sample.iob2"
NER_DEV = REPO / "data" / "uner_english_ewt" / "en_ewt-ud-dev.sample.iob2"


@pytest.fixture(scope="module")
def train():
    return read_iob2(NER_TRAIN)


@pytest.fixture(scope="module")
def system(train):
    return BiluoSystem.from_examples(train)


def make(labels=("PER", "ORG", "LOC")):
    return BiluoSystem(list(labels))


def run(system, length, names):
    state = system.init_state(length)
    for name in names:
        system.apply(state, system.class_id(name))
    return state


def valid_names(system, state):
    return {system.move_names[i] for i in numpy.flatnonzero(system.valid_mask(state))}


# ------------------------------------------------------------------ inventory


def test_inventory_per_org_loc():
    system = make()
    assert system.n_actions == 14 == 2 + 4 * 3
    assert system.move_names == [
        "B-PER", "B-ORG", "B-LOC", "I-PER", "I-ORG", "I-LOC", "L-PER", "L-ORG", "L-LOC",
        "U-PER", "U-ORG", "U-LOC", "U-", "O",
    ]
    assert system.class_id("U-") == 12 == system.UNLABELLED_UNIT and system.class_id("O") == 13 == system.OUT
    assert BiluoSystem.from_dict(system.to_dict()).move_names == system.move_names
    assert len(system) == system.n_moves == 14 and system.class_names == system.move_names
    assert system.class_index("O") == 13
    assert make(()).n_actions == 2
    with pytest.raises(KeyError):
        system.class_id("B-MISC")
    with pytest.raises(ValueError):
        BiluoSystem(["PER", "PER"])


def test_labels_from_examples(train):
    # First-seen order (default): the first sentence's first entity is ORG ("Al-Zaman").
    assert BiluoSystem.from_examples(train).labels == ("ORG", "PER", "LOC")
    # spaCy's order (descending token frequency), measured with spaCy 3.8 on this sample:
    # B-LOC B-PER B-ORG I-LOC ... U-ORG U- O.
    spacy_order = BiluoSystem.from_examples(train, label_order="spacy")
    assert spacy_order.labels == ("LOC", "PER", "ORG")
    assert spacy_order.move_names[:3] == ["B-LOC", "B-PER", "B-ORG"] and spacy_order.move_names[-2:] == ["U-", "O"]
    with pytest.raises(ValueError):
        BiluoSystem.from_examples(train, label_order="alphabetical")


# ------------------------------------------------------------------ validity, apply, decode


def test_validity_rules():
    system = make()
    s = system.init_state(3)
    assert valid_names(system, s) == {"B-PER", "B-ORG", "B-LOC", "U-PER", "U-ORG", "U-LOC", "O"}
    system.apply(s, system.class_id("B-ORG"))  # inside ORG: only I-ORG / L-ORG
    assert valid_names(system, s) == {"I-ORG", "L-ORG"}
    system.apply(s, system.class_id("I-ORG"))  # last token: I no longer valid
    assert valid_names(system, s) == {"L-ORG"}
    system.apply(s, system.class_id("L-ORG"))
    assert system.is_final(s) and s.is_final() and not system.valid_mask(s).any()
    assert system.decode(s) == [(0, 3, "ORG")]
    # last token outside an entity: no B
    last = run(system, 2, ["O"])
    assert valid_names(system, last) == {"U-PER", "U-ORG", "U-LOC", "O"}
    # one-token sentence
    assert valid_names(system, system.init_state(1)) == {"U-PER", "U-ORG", "U-LOC", "O"}
    # U- (blocked-token marker) is never valid: no preset annotations
    for state in (system.init_state(3), run(system, 3, ["B-PER"]), last):
        assert not system.is_valid(state, system.UNLABELLED_UNIT)
    # an empty sentence is final at once
    assert system.is_final(system.init_state(0))


def test_invalid_move_raises_and_state_unchanged():
    system = make()
    s = run(system, 4, ["B-PER"])
    for name in ("O", "B-PER", "U-LOC", "I-ORG", "L-LOC", "U-"):
        with pytest.raises(ValueError, match="not valid"):
            system.apply(s, system.class_id(name))
    assert s.key() == (1, 0, 0) and s.entities == []


def test_apply_decode_and_copy():
    system = make()
    s = run(system, 6, ["U-PER", "O", "B-LOC", "I-LOC", "L-LOC"])
    c = s.copy()
    system.apply(s, system.class_id("U-ORG"))
    assert system.decode(s) == [(0, 1, "PER"), (2, 5, "LOC"), (5, 6, "ORG")]
    assert system.decode(c) == [(0, 1, "PER"), (2, 5, "LOC")] and not c.is_final()
    assert system.describe(s).endswith("hist=['U-PER', 'O', 'B-LOC', 'I-LOC', 'L-LOC', 'U-ORG']")


def test_batched_helpers():
    system = make()
    states = system.init_states([3, 1, 0])
    masks = system.valid_masks(states)
    assert masks.shape == (3, 14) and masks.dtype == bool
    assert masks[0, system.class_id("B-PER")] and not masks[1, system.class_id("B-PER")] and not masks[2].any()
    system.advance(states, [system.class_id("B-PER"), system.class_id("O"), 0])  # final state: ignored
    assert [s.b0 for s in states] == [1, 1, 0]
    golds = [system.make_gold(["B-PER", "L-PER", "O"]), system.make_gold(["O"]), system.make_gold([])]
    costs = system.costs_batch(states, golds)
    assert costs.shape == (3, 14) and costs.dtype == numpy.float32
    assert costs[0, system.class_id("I-PER")] == 1 and costs[0, system.class_id("L-PER")] == 0
    assert (costs[1:] == INVALID_COST).all()  # final states: no valid move


# ------------------------------------------------------------------ features


def ids(system, state, nF):
    return system.feature_ids([state], nF)[0].tolist()


def test_feature_ids():
    system = make()
    s = system.init_state(8)
    assert ids(system, s, 1) == [0]
    assert ids(system, s, 3) == [0, -1, -1]
    assert ids(system, s, 6) == [0, -1, -1, -1, -1, -1]
    system.apply(s, system.class_id("O"))
    system.apply(s, system.class_id("B-PER"))  # entity opened at 1, B0 = 2
    assert (s.B(0), s.B(1), s.E(0), s.E(1)) == (2, 3, 1, -1)
    assert ids(system, s, 3) == [2, 1, 1]
    assert ids(system, s, 6) == [2, 1, -1, -1, -1, -1]
    for _ in range(5):
        system.apply(s, system.class_id("I-PER"))  # B0 = 7 (last token), entity 1..6
    assert ids(system, s, 3) == [7, 1, 6]
    assert ids(system, s, 6) == [7, 1, 2, 3, 4, 5]  # entity tokens from its start, at most 5
    system.apply(s, system.class_id("L-PER"))
    assert ids(system, s, 3) == [-1, -1, -1] and s.B(0) == -1  # final
    with pytest.raises(ValueError, match="featurisation"):
        ids(system, s, 8)


def test_feature_ids_batch_offsets():
    system = make()
    states = system.init_states([4, 2, 3])
    assert [st.offset for st in states] == [0, 4, 6]  # running sum of lengths
    system.advance(states, [system.class_id("B-ORG"), system.class_id("O"), system.class_id("U-PER")])
    batch = system.feature_ids(states, 3)
    assert batch.dtype == numpy.int32 and batch.shape == (3, 3)
    assert batch.tolist() == [[1, 0, 0], [5, -1, -1], [7, -1, -1]]
    assert [st.offset for st in system.init_states([2, 2], offsets=[10, 20])] == [10, 20]
    assert system.feature_ids([], 6).shape == (0, 6)


# ------------------------------------------------------------------ oracle on the sample


def test_oracle_reproduces_every_training_sentence(train, system):
    """Follow the zero-cost valid move from the initial state until final, on every sentence:
    at every step exactly one valid move costs 0 (fully annotated gold), and the result is the gold."""
    n_steps = 0
    for eg in train:
        gold = system.gold_from_example(eg)
        state = system.init_state(len(eg))
        while not system.is_final(state):
            costs = system.costs(state, gold)
            mask = system.valid_mask(state)
            assert (costs[~mask] == INVALID_COST).all()
            zero = numpy.flatnonzero(mask & (costs == 0))
            assert len(zero) == 1, (eg.source, state)
            assert system.move_names[zero[0]] == eg.gold["ner"][state.b0]  # the gold BILUO tag is the move
            system.apply(state, int(zero[0]))
            n_steps += 1
        assert system.decode(state) == eg.gold["entities"], eg.source
        assert system.oracle_sequence(gold) == [system.class_id(t) for t in eg.gold["ner"]]
    assert n_steps == sum(len(eg) for eg in train)


def _brute_force(system, gold_entities):
    """min over futures of (|P_future| - 2 |P_future ∩ G|) and max |P_future ∩ G|, memoised on state.key()."""
    G = set(gold_entities)

    def closed_after(state, c):
        s2 = state.copy()
        n = len(s2.entities)
        system.apply(s2, c)
        new = [(a, b, system.labels[lab]) for a, b, lab in s2.entities[n:]]
        return s2, new

    @lru_cache(maxsize=None)
    def best(key, length):
        state = State(length)
        state.b0, state.ent_start, state.ent_label = key
        if system.is_final(state):
            return 0, 0
        loss, matched = 10**9, -1
        for c in numpy.flatnonzero(system.valid_mask(state)):
            s2, new = closed_after(state, int(c))
            hit = sum(e in G for e in new)
            f_loss, f_match = best(s2.key(), length)
            loss = min(loss, len(new) - 2 * hit + f_loss)
            matched = max(matched, hit + f_match)
        return loss, matched

    def min_loss(state):
        """Minimum FP+FN of any final entity set reachable from state, and the max matchable gold entities."""
        past = [(a, b, system.labels[lab]) for a, b, lab in state.entities]
        hit = sum(e in G for e in past)
        f_loss, f_match = best(state.key(), state.length)
        return len(past) + len(G) - 2 * hit + f_loss, hit + f_match

    return min_loss, closed_after


def _check_state(system, state, gold, gold_entities, min_loss, gold_path):
    costs = system.costs(state, gold)
    graded = system.costs(state, gold, graded=True)
    here, _ = min_loss(state)
    invalid = ~system.valid_mask(state)
    assert (costs[invalid] == INVALID_COST).all() and (graded[invalid] == INVALID_COST).all()
    for c in numpy.flatnonzero(system.valid_mask(state)):
        after = state.copy()
        system.apply(after, int(c))
        loss_after, max_matched = min_loss(after)
        # graded cost = the exact increase of the minimum achievable FP+FN
        assert graded[c] == loss_after - here, (system.move_names[c], state, gold.tags)
        assert costs[c] == min(graded[c], 1)
        if gold_path and costs[c] >= 1:
            assert loss_after >= 1  # the gold entity sequence is no longer reachable
            if gold.tags[state.b0] != "O":  # on an entity token: a gold entity is lost for good
                assert max_matched < len(gold_entities)
        if gold_path and costs[c] == 0:
            assert loss_after == 0


def test_costs_are_exact_on_and_off_the_gold_path(train, system):
    """Wrong moves cost >= 1 and make the gold unreachable (on an entity token: lose a gold entity);
    graded costs equal the brute-force increase in minimum FP+FN, from gold-path states and from
    states reached by random (valid) moves."""
    rng = random.Random(0)
    sample = [eg for eg in train if eg.gold["entities"] and len(eg) <= 35][:100]
    assert len(sample) == 100
    for eg in sample:
        gold = system.gold_from_example(eg)
        min_loss, _ = _brute_force(system, eg.gold["entities"])
        state = system.init_state(len(eg))
        while not system.is_final(state):  # gold path
            _check_state(system, state, gold, eg.gold["entities"], min_loss, gold_path=True)
            system.apply(state, system.oracle_move(state, gold))
        state = system.init_state(len(eg))
        while not system.is_final(state):  # exploring: a random valid move half of the time
            _check_state(system, state, gold, eg.gold["entities"], min_loss, gold_path=False)
            valid = [int(c) for c in numpy.flatnonzero(system.valid_mask(state))]
            c = system.oracle_move(state, gold) if rng.random() < 0.5 else rng.choice(valid)
            system.apply(state, c)


def test_wrong_moves_hand_made():
    system = make()
    gold_tags = ["O", "B-PER", "I-PER", "L-PER", "U-LOC", "O"]
    gold = system.make_gold(gold_tags)
    costs = system.costs(system.init_state(6), gold)
    assert costs[system.OUT] == 0
    assert all(costs[system.class_id(f"{m}-{lab}")] == 1 for m in "BU" for lab in system.labels)
    s = run(system, 6, ["O"])
    costs = system.costs(s, gold)
    assert costs[system.class_id("B-PER")] == 0 and costs[system.OUT] == 1 and costs[system.class_id("U-PER")] == 1
    assert costs[system.class_id("B-ORG")] == 1
    s = run(system, 6, ["O", "B-PER", "I-PER"])
    costs = system.costs(s, gold)
    assert costs[system.class_id("L-PER")] == 0 and costs[system.class_id("I-PER")] == 1
    s = run(system, 6, ["O", "B-PER"])
    assert system.costs(s, gold)[system.class_id("L-PER")] == 1
    # off the gold path: the entity opened at the wrong token is dead, closing it at once is free
    s = run(system, 6, ["B-PER"])
    costs = system.costs(s, gold)
    assert costs[system.class_id("L-PER")] == 0 and costs[system.class_id("I-PER")] == 0  # next is I-PER: nothing to lose
    s = run(system, 6, ["B-PER", "I-PER", "I-PER"])  # at token 3 (gold L-PER), next token starts U-LOC
    costs = system.costs(s, gold)
    assert costs[system.class_id("L-PER")] == 0 and costs[system.class_id("I-PER")] == 1


def test_missing_annotation_costs_nothing(train, system):
    """At a token whose gold tag is missing (None) every valid move costs 0, from gold-path and random
    states; elsewhere some valid move costs 0 at every step."""
    rng = random.Random(1)
    n_missing_steps = 0
    for eg in train[:150]:
        tags = [None if rng.random() < 0.3 else t for t in eg.gold["ner"]]
        gold = system.make_gold(tags)
        for explore in (0.0, 0.5):
            state = system.init_state(len(eg))
            while not system.is_final(state):
                costs = system.costs(state, gold)
                mask = system.valid_mask(state)
                assert (costs[mask] == 0).any()
                if tags[state.b0] is None:
                    assert (costs[mask] == 0).all()
                    n_missing_steps += 1
                valid = [int(c) for c in numpy.flatnonzero(mask)]
                c = rng.choice(valid) if rng.random() < explore else system.oracle_move(state, gold)
                system.apply(state, c)
    assert n_missing_steps > 1000
    # a missing token inside an entity: the oracle keeps the entity going when the next tag continues it
    system3 = make()
    gold = system3.make_gold(["B-PER", None, "L-PER", None, "O"])
    state = system3.init_state(5)
    for c in system3.oracle_sequence(gold):
        system3.apply(state, c)
    assert system3.decode(state) == [(0, 3, "PER")]


def test_invalid_gold_is_rejected():
    system = make()
    for tags in (["B-PER"], ["I-PER", "L-PER"], ["B-PER", "O"], ["B-PER", "L-ORG"], ["U-PER", "L-PER"], ["X-PER"]):
        with pytest.raises(ValueError):
            system.make_gold(tags)
    system.make_gold(["B-PER", None])  # a missing token may hide the entity's end
    assert system.make_gold(["U-MISC", "O"]).starts[:2] == [0, 0]  # unknown label: not predictable


def test_unknown_label_in_gold_costs():
    system = make()
    gold = system.make_gold(["U-MISC", "O"])  # the system cannot predict MISC
    costs = system.costs(system.init_state(2), gold)
    assert costs[system.OUT] == 0 and costs[system.class_id("U-PER")] == 1


def test_segments_and_is_gold_parse(train, system):
    eg = max(train, key=len)
    gold = system.gold_from_example(eg)
    oracle = system.oracle_sequence(gold)
    starts = system.segments(system.init_state(len(eg)), gold, max_moves=10)
    assert [st.b0 for st in starts] == list(range(0, len(eg), 10))
    for st in starts:
        assert system.is_gold_parse(st, gold) and st.history == oracle[: st.b0]
    # segments of tokens without any annotation are dropped
    tags = list(eg.gold["ner"])
    tags[10:20] = [None] * 10
    starts = system.segments(system.init_state(len(eg)), system.make_gold(tags), max_moves=10)
    assert 10 not in [st.b0 for st in starts] and 0 in [st.b0 for st in starts]
    small = make()
    g = small.make_gold(["O", "B-PER", "L-PER", None])
    assert small.is_gold_parse(run(small, 4, ["O", "B-PER"]), g)
    assert not small.is_gold_parse(run(small, 4, ["O", "B-ORG"]), g)
    assert not small.is_gold_parse(run(small, 4, ["U-PER"]), g)
    assert small.is_gold_parse(run(small, 4, ["O", "B-PER", "L-PER", "U-LOC"]), g)  # missing: anything goes


# ------------------------------------------------------------------ scorer


def test_scorer_hand_made():
    gold = [[(0, 2, "PER"), (3, 4, "LOC")], [(1, 2, "ORG")], []]
    pred = [[(0, 2, "PER"), (3, 4, "ORG")], [(1, 2, "ORG")], [(0, 1, "PER")]]
    scores = score_entities(pred, gold)
    # tp 2 (PER, ORG), fp 2 (ORG at 3-4, PER at 0-1), fn 1 (LOC)
    assert scores["ents_p"] == pytest.approx(2 / 4)
    assert scores["ents_r"] == pytest.approx(2 / 3)
    assert scores["ents_f"] == pytest.approx(2 * (0.5 * 2 / 3) / (0.5 + 2 / 3))
    per = scores["ents_per_type"]
    assert per["PER"] == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})
    assert per["ORG"] == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})
    assert per["LOC"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})
    # exact match only: a boundary error is one FP and one FN
    off = score_entities([[(0, 3, "PER")]], [[(0, 2, "PER")]])
    assert (off["ents_p"], off["ents_r"], off["ents_f"]) == (0.0, 0.0, 0.0)
    assert score_entities([[]], [[]]) == {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}
    assert PRF(tp=1, fp=1).to_dict() == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})


def test_scorer_missing_annotation():
    gold = [[(0, 1, "PER")], [(0, 1, "LOC")]]
    pred = [[(0, 1, "PER"), (2, 4, "ORG")], [(1, 2, "LOC")]]
    tags = [["U-PER", "O", "O", None], [None, None]]  # 2nd sentence: no annotation at all -> skipped
    scores = score_entities(pred, gold, tags)
    assert scores["ents_p"] == 1.0 and scores["ents_r"] == 1.0  # the ORG over a missing token is ignored
    assert set(scores["ents_per_type"]) == {"PER", "ORG"}


def test_scorer_on_sample(system):
    dev = read_iob2(NER_DEV)
    gold = [eg.gold["entities"] for eg in dev]
    perfect = score_examples(dev, gold)
    assert perfect["ents_f"] == pytest.approx(1.0) and set(perfect["ents_per_type"]) == {"LOC", "ORG"}
    # decoding the oracle's moves gives the same perfect score
    decoded = []
    for eg in dev:
        g = system.gold_from_example(eg)
        state = system.init_state(len(eg))
        for c in system.oracle_sequence(g):
            system.apply(state, c)
        decoded.append(system.decode(state))
    assert decoded == gold
    nothing = score_examples(dev, [[] for _ in dev])
    assert nothing["ents_r"] == 0.0 and nothing["ents_p"] == 0.0
    n = sum(len(g) for g in gold)
    half = score_examples(dev, [g[: len(g) // 2] for g in gold])
    kept = sum(len(g) // 2 for g in gold)
    assert half["ents_p"] == pytest.approx(1.0) and half["ents_r"] == pytest.approx(kept / n)
