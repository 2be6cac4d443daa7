"""Arc-eager transition system, dynamic oracle, featurisation (search/tasks/parsing/arc_eager.py)
and the dependency scorer (search/tasks/parsing/dep_scorer.py)."""

import random
from pathlib import Path

import numpy
import pytest

from search.corpora.conllu import read_conllu
from search.tasks.parsing.arc_eager import BREAK, INVALID_COST, LEFT, MOVE_NAMES, REDUCE, RIGHT, SHIFT, ArcEager, concat_trees, count_errors
from search.tasks.parsing.dep_scorer import score_deps
from search.tasks.parsing.nonproj import deprojectivize, is_projective, projectivize

TRAIN_SAMPLE = Path(__file__).resolve().parents[3] / "data" / "ud_english_ewt" / "en_ewt-ud-train.sample.conllu"


@pytest.fixture(scope="module")
def examples():
    return read_conllu(TRAIN_SAMPLE)


@pytest.fixture(scope="module")
def moves30(examples):
    return ArcEager.from_examples(examples, min_freq=30)


@pytest.fixture(scope="module")
def moves1(examples):
    return ArcEager.from_examples(examples, min_freq=1)


def run_oracle(moves, gold, state=None):
    st = moves.init_state(gold.length) if state is None else state
    for clas in moves.oracle_sequence(gold, st):
        moves.apply(st, clas)
    return st


# ----------------------------------------------------------------- (c) inventory


def test_inventory_on_sample(examples, moves30):
    names = moves30.class_names
    print(f"\n{len(names)} classes (min_freq=30): {names}")
    assert len(moves30) == moves30.n_moves == 44
    counts = {m: sum(1 for n in names if n.split("-")[0] == m) for m in MOVE_NAMES}
    assert counts == {"S": 1, "D": 1, "L": 20, "R": 21, "B": 1}
    # grouped by move type, in the order S, D, L, R, B
    types = [n.split("-")[0] for n in names]
    assert types == sorted(types, key=MOVE_NAMES.index)
    assert names[:2] == ["S", "D"] and names[-1] == "B-ROOT"
    # backoffs present, last in their block (rarer than min_freq themselves here)
    assert names.index("L-dep") == names.index("R-flat") - 1
    assert names.index("R-dep") == len(names) - 2
    assert moves30.root_label == "root"


def test_class_order_rule(examples, moves30):
    # within a move type: order of first occurrence of the (projectivised) label
    first = {LEFT: [], RIGHT: []}
    freq = {LEFT: {}, RIGHT: {}}
    for eg in examples:
        heads, labels = projectivize(eg.gold["heads"], eg.gold["deps"])
        for i, (h, lab) in enumerate(zip(heads, labels)):
            if h == -1:
                continue
            move = LEFT if h > i else RIGHT
            freq[move][lab] = freq[move].get(lab, 0) + 1
            if lab not in first[move]:
                first[move].append(lab)
    for move, letter in ((LEFT, "L"), (RIGHT, "R")):
        expected = [lab for lab in first[move] if freq[move][lab] >= 30]
        got = [n[2:] for n in moves30.class_names if n.startswith(letter + "-")]
        assert got == expected + ["dep"]
    # spaCy's order: frequency descending, ties by label descending, backoff last
    spacy_order = ArcEager.from_examples(examples, min_freq=30, order="freq")
    assert sorted(spacy_order.class_names) == sorted(moves30.class_names)
    for move, letter in ((LEFT, "L"), (RIGHT, "R")):
        got = [n[2:] for n in spacy_order.class_names if n.startswith(letter + "-")]
        assert got[-1] == "dep"
        keys = [(freq[move][lab], lab) for lab in got[:-1]]
        assert keys == sorted(keys, reverse=True)
    with pytest.raises(ValueError):
        ArcEager.from_examples(examples, order="alphabetical")


def test_inventory_serialisation_and_lookup(moves30):
    again = ArcEager.from_dict(moves30.to_dict())
    assert again.class_names == moves30.class_names
    assert again.root_label == "root" and not again.monotonic
    assert moves30.class_index("L-nsubj") == moves30.class_names.index("L-nsubj")
    assert moves30.classes[moves30.class_index("R-obj")][0] == RIGHT
    assert moves30.classes[0] == (SHIFT, 0) and moves30.classes[1] == (REDUCE, 0)
    with pytest.raises(ValueError, match="B-ROOT"):
        ArcEager([(SHIFT, ""), (REDUCE, ""), (LEFT, "dep"), (RIGHT, "dep")])


def test_gold_maps_rare_and_decorated_labels_to_dep(examples, moves30):
    eg = next(e for e in examples if not is_projective(e.gold["heads"]))
    gold = moves30.gold_from_example(eg)
    heads, labels = moves30.gold_tree(gold)
    ph, pl = projectivize(eg.gold["heads"], eg.gold["deps"])
    assert heads == ph
    for i, (h, lab) in enumerate(zip(ph, pl)):
        if h == -1:
            assert labels[i] == "root"
        else:
            letter = "L" if h > i else "R"
            known = f"{letter}-{lab}" in moves30.class_names
            assert labels[i] == (lab if known else "dep")
    assert any("||" in lab for lab in pl) and not any("||" in lab for lab in labels)


# ----------------------------------------------------------------- (a) oracle reproduces gold


def test_oracle_reproduces_every_training_tree(examples, moves1, moves30):
    n_exact_orig = n_nonproj = 0
    for eg in examples:
        heads, labels = eg.gold["heads"], eg.gold["deps"]
        for moves in (moves1, moves30):
            gold = moves.gold_from_example(eg)
            st = run_oracle(moves, gold)
            assert st.is_final()
            assert moves.is_gold_parse(st, gold), eg.source
            # projectivised tree with inventory labels, exactly
            assert moves.decode(st, deprojectivize_tree=False) == moves.gold_tree(gold), eg.source
            assert count_errors(moves, st, gold) == 0
        # min_freq=1: every label survives, so deprojectivising gives the original tree
        # wherever the lifting is lossless
        gold = moves1.gold_from_example(eg)
        decoded = moves1.decode(run_oracle(moves1, gold))
        assert decoded == deprojectivize(*projectivize(heads, labels))
        n_exact_orig += decoded == (list(heads), list(labels))
        n_nonproj += not is_projective(heads)
        # min_freq=30: projective sentences keep their heads; labels survive where the
        # inventory has them, else "dep"
        if is_projective(heads):
            d_heads, d_labels = moves30.decode(run_oracle(moves30, moves30.gold_from_example(eg)))
            assert d_heads == list(heads)
            for i, (h, lab) in enumerate(zip(heads, labels)):
                if h != -1:
                    known = f"{'L' if h > i else 'R'}-{lab}" in moves30.class_names
                    assert d_labels[i] == (lab if known else "dep")
    print(f"\noracle: {len(examples)}/{len(examples)} gold trees reproduced (min_freq 1 and 30); "
          f"original tree after deprojectivize: {n_exact_orig} ({n_nonproj} non-projective)")
    assert n_exact_orig == 598


def test_oracle_on_multi_sentence_docs_uses_break(examples, moves30):
    for start in (0, 100, 200):
        trees = [(eg.gold["heads"], eg.gold["deps"]) for eg in examples[start : start + 10]]
        heads, labels, starts = concat_trees(trees)
        gold = moves30.make_gold(heads, labels, starts)
        seq = moves30.oracle_sequence(gold)
        assert sum(1 for c in seq if moves30.classes[c][0] == BREAK) == 9
        st = moves30.init_state(gold.length)
        for c in seq:
            moves30.apply(st, c)
        assert moves30.is_gold_parse(st, gold)
        assert sorted(st.sent_starts) == [i for i, s in enumerate(starts) if s and i > 0]


# ----------------------------------------------------------------- (b) costs


def test_costs_along_gold_paths(examples, moves30):
    for eg in examples:
        gold = moves30.gold_from_example(eg)
        st = moves30.init_state(gold.length)
        while not st.is_final():
            costs = moves30.costs(st, gold)
            valid = moves30.valid_mask(st)
            assert costs.dtype == numpy.float32 and costs.shape == (len(moves30),)
            assert (costs[valid] >= 0).all()
            assert (costs[~valid] == INVALID_COST).all()
            assert (costs[valid] < INVALID_COST).all()
            assert ((costs == 0) & valid).any()
            clas = moves30.oracle_move(st, gold)
            assert clas == int(numpy.argmin(costs))
            moves30.apply(st, clas)


def random_walk(moves, gold, rng, p_random):
    """Follow a random valid move with probability p_random, else the oracle; return
    (sum of the costs of the moves taken, errors of the final tree, states seen)."""
    st = moves.init_state(gold.length)
    total = 0.0
    n_states = 0
    while not st.is_final():
        costs = moves.costs(st, gold)
        valid = moves.valid_mask(st)
        assert valid.any()
        # spaCy's invariant (E1031): every reachable state has a valid move of cost <= 0
        assert ((costs <= 0) & valid).any()
        assert moves.oracle_move(st, gold) == int(numpy.argmin(costs))
        n_states += 1
        if rng.random() < p_random:
            clas = rng.choice(numpy.flatnonzero(valid).tolist())
        else:
            clas = int(numpy.argmin(costs))
        total += float(costs[clas])
        moves.apply(st, clas)
        assert n_states <= 4 * gold.length + 10
    return total, count_errors(moves, st, gold), n_states


def single_deviations(moves, examples, rng, per_sentence=2):
    """Random wrong move mid-sentence, then the oracle: (predicted cost, errors) pairs."""
    pairs = []
    for eg in examples:
        gold = moves.gold_from_example(eg)
        oracle = moves.oracle_sequence(gold)
        for _ in range(per_sentence):
            k = rng.randrange(len(oracle))
            st = moves.init_state(gold.length)
            for c in oracle[:k]:
                moves.apply(st, c)
            costs = moves.costs(st, gold)
            wrong = [c for c in range(len(moves)) if costs[c] != 0 and costs[c] < INVALID_COST]
            if not wrong:
                continue
            c = rng.choice(wrong)
            moves.apply(st, c)
            st = run_oracle(moves, gold, st)
            pairs.append((float(costs[c]), count_errors(moves, st, gold)))
    return pairs


def test_monotonic_oracle_is_exact(examples):
    moves = ArcEager.from_examples(examples, min_freq=30, monotonic=True)
    assert len(moves) == 44
    rng = random.Random(0)
    sample = examples[::3]
    pairs = single_deviations(moves, sample, rng)
    assert len(pairs) > 300
    assert all(pred == err for pred, err in pairs), [p for p in pairs if p[0] != p[1]][:5]
    assert all(pred > 0 for pred, _ in pairs)
    # along any path the costs add up to the errors of the final tree
    for eg in sample:
        gold = moves.gold_from_example(eg)
        for p in (0.2, 1.0):
            total, errors, _ = random_walk(moves, gold, rng, p)
            assert total == errors
    print(f"\nmonotonic: {len(pairs)} single deviations, all exact; "
          f"{2 * len(sample)} random walks, costs sum to the errors in all")


def test_spacy_oracle_after_wrong_moves(examples, moves30):
    """spaCy's non-monotonic system: costs are approximate (a wrong arc can be repaired
    by a later LEFT-ARC or REDUCE-unshift; BREAK ignores B0's arcs) -- measured, and the
    invariants spaCy relies on are checked."""
    rng = random.Random(0)
    sample = examples[::3]
    pairs = single_deviations(moves30, sample, rng)
    exact = sum(1 for pred, err in pairs if pred == err)
    over = sum(1 for pred, err in pairs if err < pred)
    assert all(pred >= 1 for pred, _ in pairs)
    n_states = n_exact_walks = 0
    n_walks = 0
    for eg in sample:
        gold = moves30.gold_from_example(eg)
        for p in (0.2, 1.0):
            total, errors, n = random_walk(moves30, gold, rng, p)
            n_states += n
            n_walks += 1
            n_exact_walks += total == errors
    print(f"\nspaCy arc-eager: single deviations: {exact}/{len(pairs)} exact, {over} cost more than the "
          f"errors, {len(pairs) - exact - over} less; random walks: {n_exact_walks}/{n_walks} exact, "
          f"{n_states} states, each with a valid zero-cost move")
    assert exact / len(pairs) > 0.5


# ----------------------------------------------------------------- (d) features, validity


def test_feature_ids_hand_worked():
    moves = ArcEager([(SHIFT, ""), (REDUCE, ""), (LEFT, "dep"), (RIGHT, "dep"), (BREAK, "ROOT")])
    S, D, L, R = (moves.class_index(n) for n in ("S", "D", "L-dep", "R-dep"))
    st = moves.init_states([5, 14], offsets=None)[1]
    assert st.offset == 5
    for c in (S, S, L, L, S, R, D, R, S, S, L, L, D, R, R, D, R, D, S, L):
        assert moves.valid_mask(st)[c]
        moves.apply(st, c)
    # stack (top first) 7, 2; buffer 11, 12, 13
    # 2: left children 1, 0 (0 leftmost); right children 3, 4, 7 (7 rightmost)
    # 7: left children 6, 5; right children 8, 9; 11: left child 10
    assert st.stack == [2, 7] and st.buffer() == [11, 12, 13]
    assert st.lefts[2] == [1, 0] and st.rights[2] == [3, 4, 7]
    assert st.lefts[7] == [6, 5] and st.rights[7] == [8, 9] and st.lefts[11] == [10]

    def ids(*xs):
        return [x + 5 if x >= 0 else -1 for x in xs]

    assert st.feature_ids(8) == ids(11, 12, 7, 2, -1, 10, 5, 9)
    # slot 5 L(S0,1)=5; slot 6 is R(S0,1)=9 (L(S0,2)=6 is written and overwritten in spaCy)
    assert st.feature_ids(13) == ids(11, 12, 7, 2, -1, 5, 9, 10, 8, 0, 1, 7, 4)
    assert st.feature_ids(1) == ids(11)
    assert st.feature_ids(2) == ids(11, 7)
    with pytest.raises(ValueError):
        st.feature_ids(3)
    batch = moves.feature_ids([moves.init_state(5), st], 8)
    assert batch.dtype == numpy.int32 and batch.shape == (2, 8)
    assert batch[0].tolist() == [0, 1, -1, -1, -1, -1, -1, -1]
    assert batch[1].tolist() == st.feature_ids(8)
    # missing tokens at the end of the sentence
    end = moves.init_state(1)
    assert end.feature_ids(8) == [0] + [-1] * 7


def test_validity_rules():
    moves = ArcEager([(SHIFT, ""), (REDUCE, ""), (LEFT, "dep"), (RIGHT, "dep"), (BREAK, "ROOT")])
    S, D, L, R, B = range(5)
    st = moves.init_state(3)
    assert moves.valid_mask(st).tolist() == [True, False, False, False, True]
    moves.apply(st, S)  # stack [0], buffer 1 2
    assert moves.valid_mask(st).tolist() == [True, True, True, True, True]
    moves.apply(st, S)  # stack [0 1], buffer 2: last word cannot be shifted
    assert moves.valid_mask(st).tolist() == [False, True, True, True, False]
    moves.apply(st, D)  # 1 has no head: put back on the buffer, unshiftable
    assert st.stack == [0] and st.buffer() == [1, 2] and st.unshiftable[1]
    assert moves.valid_mask(st).tolist() == [False, True, True, True, True]
    moves.apply(st, L)  # 1 -> 0, pop 0, 1 shiftable again
    assert st.heads[0] == 1 and not st.unshiftable[1] and st.stack == []
    moves.apply(st, B)  # 2 starts a sentence: no arcs into it, only REDUCE or SHIFT of an empty stack
    moves.apply(st, S)
    assert moves.valid_mask(st).tolist() == [False, True, False, False, False]
    moves.apply(st, D)
    moves.apply(st, S)
    moves.apply(st, D)
    assert st.is_final() and not moves.valid_mask(st).any()
    assert moves.best_valid(numpy.zeros((1, 5)), moves.valid_masks([st])).tolist() == [-1]
    assert moves.decode(st) == ([1, -1, -1], ["dep", "ROOT", "ROOT"])
    # monotonic: no REDUCE without a head until the buffer is empty, LEFT only head-less, no BREAK
    mono = ArcEager([(SHIFT, ""), (REDUCE, ""), (LEFT, "dep"), (RIGHT, "dep"), (BREAK, "ROOT")], monotonic=True)
    st = mono.init_state(2)
    assert mono.valid_mask(st).tolist() == [True, False, False, False, False]
    mono.apply(st, S)
    assert mono.valid_mask(st).tolist() == [True, False, True, True, False]
    mono.apply(st, R)
    assert mono.valid_mask(st).tolist() == [False, True, False, False, False]


def test_batched_helpers_agree(examples, moves30):
    golds = [moves30.gold_from_example(eg) for eg in examples[:40]]
    states = moves30.init_states([g.length for g in golds])
    assert [s.offset for s in states[:3]] == [0, golds[0].length, golds[0].length + golds[1].length]
    rng = random.Random(1)
    while states:
        costs = moves30.costs_batch(states, golds)
        valid = moves30.valid_masks(states)
        for st, g, c, v in zip(states, golds, costs, valid):
            assert (c == moves30.costs(st, g)).all()
            assert (v == moves30.valid_mask(st)).all()
        picks = [rng.choice(numpy.flatnonzero(v).tolist()) if rng.random() < 0.3 else int(c.argmin())
                 for c, v in zip(costs, valid)]
        moves30.advance(states, picks)
        if picks:
            scores = numpy.random.default_rng(0).normal(size=costs.shape).astype("float32")
            best = moves30.best_valid(scores, valid)
            assert all(v[b] and s[b] == s[v].max() for b, s, v in zip(best, scores, valid))
        keep = [i for i, s in enumerate(states) if not s.is_final()]
        states = [states[i] for i in keep]
        golds = [golds[i] for i in keep]


def test_segments_of_long_documents(examples, moves30):
    trees = [(eg.gold["heads"], eg.gold["deps"]) for eg in examples[:10]]
    gold = moves30.make_gold(*concat_trees(trees))
    start = moves30.init_state(gold.length, offset=7)
    oracle = moves30.oracle_sequence(gold, start)
    segs = moves30.segments(start, gold, max_moves=50)
    assert start.stack == [] and start.b_i == 0  # not modified
    assert len(segs) == -(-len(oracle) // 50)
    assert segs[0].b_i == 0 and all(s.offset == 7 for s in segs)
    for i, seg in enumerate(segs):
        assert len(seg.history) == 50 * i
        assert seg.history == oracle[: 50 * i]
        assert moves30.oracle_sequence(gold, seg) == oracle[50 * i :]
    with pytest.raises(ValueError):
        moves30.segments(start, gold, max_moves=0)


def test_missing_gold_heads_cost_nothing(moves30):
    heads = [1, -1, None, 1]
    labels = ["nsubj", "root", None, "obj"]
    gold = moves30.make_gold(heads, labels)
    assert gold.known == [True, True, False, True]
    st = run_oracle(moves30, gold)
    assert moves30.is_gold_parse(st, gold)
    # the oracle leaves the unannotated word wherever it is cheapest; the others are right
    h, lab = moves30.decode(st)
    assert h[0] == 1 and h[1] == -1 and h[3] == 1 and lab[0] == "nsubj" and lab[3] == "obj"


# ----------------------------------------------------------------- (e) scorer


def test_scorer_punct_excluded_and_conll():
    gold_heads = [[1, -1, 1, 1]]
    gold_labels = [["nsubj", "root", "obj", "punct"]]
    # head of "obj" wrong, punct attached wrongly: spaCy ignores punct
    pred_heads = [[1, -1, 0, 0]]
    pred_labels = [["nsubj", "ROOT", "obj", "punct"]]
    s = score_deps(gold_heads, gold_labels, pred_heads, pred_labels)
    assert s["dep_uas"] == pytest.approx(2 / 3)
    assert s["dep_las"] == pytest.approx(2 / 3)  # labels lower-cased: ROOT == root
    assert s["conll_uas"] == pytest.approx(2 / 4)
    assert s["conll_las"] == pytest.approx(2 / 4)
    assert s["dep_las_per_type"]["obj"]["f"] == pytest.approx(0.0)
    assert s["dep_las_per_type"]["nsubj"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})
    assert "punct" not in s["dep_las_per_type"]
    assert s["n_words"] == 4 and s["n_scored"] == 3


def test_scorer_label_errors_subtypes_and_punct_mismatch():
    gold_heads = [[1, -1, 1], [-1, 0]]
    gold_labels = [["nmod:poss", "root", "punct"], ["root", "obj"]]
    pred_heads = [[1, -1, 1], [-1, 0]]
    # sentence 1: subtype wrong (nmod vs nmod:poss), gold punct predicted "dep" (a false
    # positive for spaCy); sentence 2: obj predicted as punct (a false negative)
    pred_labels = [["nmod", "root", "dep"], ["root", "punct"]]
    s = score_deps(gold_heads, gold_labels, pred_heads, pred_labels)
    # unlabelled: pred {(0,1),(1,1),(2,1)} + {(0,0)}; gold {(0,1),(1,1)} + {(0,0),(1,0)}
    tp, fp, fn = 3, 1, 1
    f = 2 * tp / (2 * tp + fp + fn)
    assert s["dep_uas"] == pytest.approx(f)
    tp, fp, fn = 2, 2, 2  # labelled: root, root right; nmod/dep wrong; nmod:poss/obj missed
    assert s["dep_las"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # CoNLL-18: all 5 words, heads all right; universal labels: nmod == nmod:poss, dep != punct,
    # punct != obj
    assert s["conll_uas"] == pytest.approx(1.0)
    assert s["conll_las"] == pytest.approx(3 / 5)
    assert s["dep_las_per_type"]["nmod:poss"]["r"] == pytest.approx(0.0)


def test_scorer_missing_gold_and_shapes():
    s = score_deps([[None, -1]], [[None, "root"]], [[1, -1]], [["det", "root"]])
    assert s["dep_uas"] == pytest.approx(1.0) and s["n_words"] == 1
    empty = score_deps([[1, -1]], [["punct", "punct"]], [[1, -1]], [["punct", "punct"]])
    assert empty["dep_uas"] is None and empty["conll_uas"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        score_deps([[1, -1]], [["a", "b"]], [[1]], [["a"]])


def test_scorer_on_oracle_output_is_perfect(examples, moves1):
    # the sentences whose lifting is lossless (598 of 600, see test_nonproj)
    egs = [e for e in examples[:150]
           if deprojectivize(*projectivize(e.gold["heads"], e.gold["deps"])) == (e.gold["heads"], e.gold["deps"])]
    assert len(egs) == 149
    pred = [moves1.decode(run_oracle(moves1, moves1.gold_from_example(eg))) for eg in egs]
    s = score_deps([e.gold["heads"] for e in egs], [e.gold["deps"] for e in egs],
                   [p[0] for p in pred], [p[1] for p in pred])
    assert s["dep_uas"] == pytest.approx(1.0) and s["dep_las"] == pytest.approx(1.0)
    assert s["conll_las"] == pytest.approx(1.0)
