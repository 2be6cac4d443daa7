"""The transition-based components (search/tasks/transition.py): `ner` and `parser` on
spacy.TransitionBasedParser.v1, trained with the ordinary loop on the bundled samples.

Floors were calibrated with real runs of the shipped configs (seed 0, one BLAS
thread): NER best ents_f 0.51 after 150 steps (0.43 at step 100), against 0.29
for "every capitalised non-initial word is a one-token LOC" and 0.14 for a
longest-match dictionary of the training entities; parser dep_uas 0.49 / 0.56
after 100 / 150 steps, against 0.29 for "attach every word to the next one".
spaCy 3.8 on the same samples with its default configs: NER 0.48 at step 100,
parser UAS 0.49 / 0.57 at steps 100 / 150.
"""

import json

import numpy
import pytest
from confection import Config
from search_testing import CONFIGS, DEV, PATHS, REPO, TRAIN, run_cli

from search.corpora.conllu import read_conllu
from search.corpora.iob2 import read_iob2
from search.space import Space
from search.tasks.parsing.ner_scorer import score_examples
from search.tasks.parsing.shared import k_training_step
from search.tasks.transition import INVALID_COST, NERComponent, ParserComponent, best_valid
from search.training.config import load_config
from search.training.device import use_cpu
from search.training.loop import train
from search.training.pipeline import Pipeline, load_pipeline

NER_CFG = CONFIGS / "ner.cfg"
PARSER_CFG = CONFIGS / "parser.cfg"
NER_DATA = REPO / "data" / "uner_english_ewt"
NER_TRAIN = NER_DATA / "en_ewt-ud-train.approx.sample.iob2"
NER_DEV = NER_DATA / "en_ewt-ud-dev.sample.iob2"
NER_PATHS = {"paths.train": str(NER_TRAIN), "paths.dev": str(NER_DEV)}


# ------------------------------------------------------------------ the loss


def reference_log_loss(scores, costs, valid):
    """spaCy's cpu_log_loss for a batch of states in NumPy (the kernel's reference):
    d_scores (n_states, n_classes), float32; rows without a usable gold move are zero."""
    n, nC = scores.shape
    d = numpy.zeros((n, nC), dtype="float32")
    if n == 0:
        return d
    scores = scores.astype("float64", copy=False)
    rows = numpy.arange(n)
    valid_costs = numpy.where(valid, costs, numpy.inf)
    threshold = numpy.minimum(1.0, valid_costs.min(axis=1))
    candidates = valid & (costs <= threshold[:, None])
    has_gold = candidates.any(axis=1)
    best = numpy.where(candidates, scores, -numpy.inf).argmax(axis=1)
    gold = costs <= costs[rows, best][:, None]
    top = scores.max(axis=1, keepdims=True)
    e = numpy.exp(scores - top)
    probs = e / (1e-10 + e.sum(axis=1, keepdims=True))
    g = numpy.where(gold, numpy.exp(numpy.minimum(scores - scores[rows, best][:, None], 0.0)), 0.0)
    d[:] = probs - g / (1e-10 + g.sum(axis=1, keepdims=True))
    d[~has_gold] = 0.0
    return d


def reference_training_step(scores, costs, seen):
    """The training step's host work in NumPy, as the kernel documents it."""
    scores = scores.copy()
    valid = costs < INVALID_COST
    seen |= (costs <= 0.0).any(axis=0)
    unseen = ~seen
    if unseen.any():
        scores[:, unseen] = scores.min()
    d_scores = reference_log_loss(scores, costs, valid)
    d_scores[:, unseen] = 0.0
    return scores, d_scores, float((d_scores.astype("float64") ** 2).sum()), best_valid(scores, valid, seen)


def run_training_step(scores, costs, seen):
    scores = numpy.array(scores, dtype="float32")
    d_scores = numpy.empty_like(scores)
    moves = numpy.empty(len(scores), dtype=numpy.int64)
    loss = k_training_step(scores, numpy.asarray(costs, dtype="float32"), INVALID_COST, seen, d_scores, moves)
    return scores, d_scores, loss, moves


def test_training_step_loss_is_spacys_multilabel_rule():
    scores = numpy.array([[2.0, 1.0, 0.5, -1.0], [0.0, 3.0, 1.0, 2.0], [1.0, 2.0, 0.0, 0.0]], dtype="f")
    costs = numpy.array([[0, 0, 1, 9000], [1, 1, 0, 9000], [2, 2, 3, 9000]], dtype="f")
    _, d, loss, moves = run_training_step(scores, costs, numpy.ones(4, dtype=bool))
    p = numpy.exp(scores - scores.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # row 0: gold set = the two zero-cost classes, softmax restricted to them
    g0 = numpy.exp(scores[0, :2] - 2.0) / numpy.exp(scores[0, :2] - 2.0).sum()
    numpy.testing.assert_allclose(d[0], p[0] - numpy.r_[g0, 0, 0], atol=1e-6)
    # row 1: the only zero-cost class is gold, even though it scores low
    numpy.testing.assert_allclose(d[1], p[1] - numpy.r_[0, 0, 1, 0], atol=1e-6)
    # row 2: no valid class costs <= 1: spaCy gives no gradient
    assert not d[2].any()
    # the invalid class is pushed down too (not masked out of Z)
    assert d[0, 3] > 0
    assert loss == pytest.approx(float((d.astype("float64") ** 2).sum()))
    # exploration: each state takes its best-scoring valid move, whatever its cost
    assert moves.tolist() == [0, 1, 1]


def test_training_step_prefers_seen_classes_and_masks_unseen_ones():
    scores = numpy.array([[3.0, 1.0, 2.0, 0.5], [0.0, 1.0, 5.0, 2.0]], dtype="f")
    costs = numpy.array([[1, 1, 9000, 1], [9000, 9000, 1, 1]], dtype="f")
    seen = numpy.array([False, True, False, False])
    masked, d, _, moves = run_training_step(scores, costs, seen)
    assert seen.tolist() == [False, True, False, False]  # nothing costs <= 0
    assert masked[:, [0, 2, 3]].tolist() == [[0.0] * 3] * 2  # the lowest score
    assert not d[:, [0, 2, 3]].any()
    # row 0: the seen class although an unseen one scores higher; row 1: no seen
    # class is valid, so the best-scoring valid unseen one (first on ties)
    assert moves.tolist() == [1, 2]
    costs[1, 3] = 0.0
    run_training_step(scores, costs, seen)
    assert seen.tolist() == [False, True, False, True]


@pytest.mark.parametrize("seed", range(6))
def test_training_step_kernel_matches_the_numpy_reference(seed):
    rng = numpy.random.default_rng(seed)
    n, n_classes = int(rng.integers(1, 40)), int(rng.integers(2, 30))
    scores = rng.normal(0, 3, (n, n_classes)).astype("float32")
    costs = rng.choice(numpy.array([0, 1, 2, 9000], dtype="float32"), size=(n, n_classes), p=[0.1, 0.3, 0.2, 0.4])
    costs[rng.random(n) < 0.2] = 9000.0  # some states with no valid move
    seen = rng.random(n_classes) < 0.6
    seen_ref = seen.copy()
    masked, d, loss, moves = run_training_step(scores, costs, seen)
    masked_ref, d_ref, loss_ref, moves_ref = reference_training_step(scores, costs, seen_ref)
    numpy.testing.assert_array_equal(seen, seen_ref)
    numpy.testing.assert_array_equal(masked, masked_ref)
    numpy.testing.assert_allclose(d, d_ref, rtol=1e-6, atol=1e-7)
    assert loss == pytest.approx(loss_ref, rel=1e-6)
    numpy.testing.assert_array_equal(moves, moves_ref)


def test_best_valid_takes_unseen_classes_only_as_a_last_resort():
    scores = numpy.array([[2.0, 1.0, 0.5, -1.0], [0.0, 3.0, 1.0, 2.0]], dtype="f")
    valid = numpy.array([[True, False, True, False], [False, False, False, True]])
    seen = numpy.array([True, True, False, False])
    assert best_valid(scores, valid, seen).tolist() == [0, 3]
    assert best_valid(scores, valid, None).tolist() == [0, 3]


# ------------------------------------------------------------------ NER


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    """configs/ner.cfg, 150 steps on the UNER sample, evaluated every 50, saved."""
    out = tmp_path_factory.mktemp("ner") / "run"
    rows = []
    result = train(
        NER_CFG, out,
        overrides={**NER_PATHS, "training.max_steps": 150, "training.eval_frequency": 50},
        on_evaluation=rows.append,
    )
    return result, rows, out


def _capitalisation_baseline(examples):
    preds = [[(i, i + 1, "LOC") for i, w in enumerate(eg.doc.words) if i > 0 and w[:1].isupper()] for eg in examples]
    return score_examples(examples, preds)["ents_f"]


def test_ner_learns_well_above_trivial_baselines(ner_run):
    result, rows, _ = ner_run
    dev = read_iob2(NER_DEV)
    baseline = _capitalisation_baseline(dev)
    assert 0.25 < baseline < 0.3
    assert [r.step for r in rows] == [50, 100, 150]
    assert result.best_score == max(r.scores["ents_f"] for r in rows)  # score_weights: ents_f only
    assert result.best_score > 0.35 and result.best_score > baseline + 0.05, [r.scores["ents_f"] for r in rows]
    assert rows[-1].losses["ner"] < rows[0].losses["ner"]
    scores = rows[-1].scores
    for key in ("ents_f", "ents_p", "ents_r", "ents_f_LOC", "ents_p_ORG", "ents_r_PER"):
        assert isinstance(scores[key], float), key


def test_ner_saved_model_reproduces_its_scores(ner_run):
    result, rows, out = ner_run
    labels = json.loads((out / "model-last" / "labels.json").read_text())["ner"]
    assert sorted(labels["system"]["labels"]) == ["LOC", "ORG", "PER"]
    assert labels["unseen"] == [12]  # U- (never valid without preset annotation)
    use_cpu()
    nlp, _ = load_pipeline(out / "model-last")
    ner = nlp.components["ner"]
    assert isinstance(ner, NERComponent) and ner.system.move_names[12] == "U-"
    dev = read_iob2(NER_DEV)
    assert nlp.evaluate(dev) == result.final_scores
    again, _ = load_pipeline(out / "model-last")
    docs = [eg.doc for eg in dev]
    assert again.predict(docs) == nlp.predict(docs)
    assert all(len(ents) == 0 or isinstance(ents[0], tuple) for ents in nlp.predict(docs)["ner"])


def test_cli_evaluates_an_ner_model_on_iob2(ner_run, tmp_path):
    result, _, out = ner_run
    scores_path = tmp_path / "scores.json"
    proc = run_cli("evaluate", str(out / "model-last"), str(NER_DEV), "--output", str(scores_path))
    assert proc.returncode == 0, proc.stderr
    assert "ents_f" in proc.stdout
    scores = json.loads(scores_path.read_text())
    assert scores["ents_f"] == pytest.approx(result.final_scores["ents_f"])
    assert scores["words_per_second"] > 0


def test_per_type_scores_work_as_score_weights():
    """Per-type keys exist for every type of the inventory, so the loop's check of
    [training.score_weights] (on the scores of one dev sentence, which has no ORG
    or PER entity) accepts them."""
    assert {label for _, _, label in read_iob2(NER_DEV, limit=1)[0].gold["entities"]} == {"LOC"}
    weights = {"ents_f_PER": 0.5, "ents_f_ORG": 0.25, "ents_r_LOC": 0.25}
    rows = []
    train(
        NER_CFG,
        overrides={
            **NER_PATHS, "training.max_steps": 2, "training.eval_frequency": 2,
            "corpora.train.limit": 40, "corpora.dev.limit": 20, "training.score_weights": weights,
        },
        on_evaluation=rows.append,
    )
    scores = rows[-1].scores
    assert rows[-1].score == pytest.approx(sum(w * scores[k] for k, w in weights.items()))


def test_ner_needs_ner_annotation():
    nlp = Pipeline.from_config(load_config(NER_CFG, NER_PATHS).interpolate())
    with pytest.raises(ValueError, match="no NER annotation"):
        nlp.initialize(read_conllu(DEV, limit=20))


def test_feature_token_counts_are_checked():
    with pytest.raises(ValueError, match="nr_feature_tokens = 8"):
        Pipeline.from_config(load_config(NER_CFG, {"components.ner.model.nr_feature_tokens": 8}).interpolate())


# ------------------------------------------------------------------ parser


def test_parser_learns_well_above_a_trivial_baseline():
    rows = []
    result = train(
        PARSER_CFG,
        overrides={
            **PATHS, "training.max_steps": 100, "training.eval_frequency": 50,
            "components.parser.per_type_scores": True,
        },
        on_evaluation=rows.append,
    )
    # attaching every word to the next one scores 0.29 UAS on the dev sample
    best_uas = max(r.scores["dep_uas"] for r in rows)
    assert best_uas > 0.42, [r.scores["dep_uas"] for r in rows]
    assert max(r.scores["dep_las"] for r in rows) > 0.2
    scores = rows[-1].scores
    assert scores["conll_uas"] > 0.4 and 0 < scores["conll_las"] <= scores["conll_uas"]
    assert "dep_las_f_nsubj" in scores and "dep_las_f_root" in scores
    assert result.best_score == max(0.5 * r.scores["dep_uas"] + 0.5 * r.scores["dep_las"] for r in rows)
    assert rows[-1].losses["parser"] < rows[0].losses["parser"]


def _small_run(config, examples, steps, batch=16):
    """Build, initialize and update a pipeline for `steps` batches; returns it and its losses."""
    use_cpu()
    from thinc.api import Adam, fix_random_seed

    fix_random_seed(0)
    nlp = Pipeline.from_config(config.interpolate())
    nlp.initialize(examples)
    sgd = Adam(0.001)
    losses = []
    for i in range(steps):
        start = (i * batch) % len(examples)
        losses.append(nlp.update(examples[start : start + batch], drop=0.1, sgd=sgd))
    return nlp, losses


@pytest.mark.parametrize(
    "cfg,overrides,reader,train_path,dev_path,name",
    [
        (NER_CFG, {"components.ner.model.nr_feature_tokens": 6}, read_iob2, NER_TRAIN, NER_DEV, "ner"),
        (PARSER_CFG, {"components.parser.model.nr_feature_tokens": 13}, read_conllu, TRAIN, DEV, "parser"),
    ],
)
def test_without_upper_layer_train_save_and_load(tmp_path, cfg, overrides, reader, train_path, dev_path, name):
    """use_upper = false (the hidden layer scores the actions), with the larger
    feature sets: trains, and a saved model predicts exactly as the live one."""
    model = f"components.{name}.model"
    config = load_config(cfg, {**overrides, f"{model}.use_upper": False, f"{model}.maxout_pieces": 1})
    examples = reader(train_path, limit=120)
    nlp, losses = _small_run(config, examples, 8)
    component = nlp.components[name]
    assert component.model.attrs["use_upper"] is False and component.nF == overrides[f"{model}.nr_feature_tokens"]
    assert component.model.get_ref("lower").get_dim("nO") == len(component.system)
    assert all(numpy.isfinite(loss[name]) and loss[name] > 0 for loss in losses)
    docs = [eg.doc for eg in reader(dev_path, limit=30)]
    before = nlp.predict(docs)
    nlp.to_disk(tmp_path / "model", config)
    loaded, _ = load_pipeline(tmp_path / "model")
    assert loaded.predict(docs) == before
    assert loaded.components[name].system.to_dict() == component.system.to_dict()
    assert (loaded.components[name].seen == component.seen).all()


def test_parser_predictions_are_trees_with_inventory_labels():
    config = load_config(PARSER_CFG, PATHS)
    examples = read_conllu(TRAIN, limit=200)
    nlp, _ = _small_run(config, examples, 3)
    parser = nlp.components["parser"]
    assert isinstance(parser, ParserComponent)
    # min_action_freq 30 on 200 sentences: a small inventory with the dep backoffs
    names = parser.system.class_names
    assert {"S", "D", "L-dep", "R-dep", "B-ROOT"} <= set(names) and len(names) < 40
    for heads, labels in nlp.predict([eg.doc for eg in read_conllu(DEV, limit=20)])["parser"]:
        assert len(heads) == len(labels)
        assert all(h == -1 or 0 <= h < len(heads) for h in heads)


def test_parser_golds_are_made_once_per_example_and_system():
    """Every epoch reuses an example's gold (projectivising is not repeated); a
    component with a new system (set_labels) makes its golds anew."""
    config = load_config(PARSER_CFG, PATHS)
    examples = read_conllu(TRAIN, limit=40)
    nlp, _ = _small_run(config, examples, 3)
    parser = nlp.components["parser"]
    made = []
    real_gold_from_example = parser.system.gold_from_example
    parser.system.gold_from_example = lambda eg: made.append(eg) or real_gold_from_example(eg)
    first = [parser.example_gold(eg) for eg in examples]
    assert len(made) == 0  # all made by the three updates already
    assert [parser.example_gold(eg) for eg in examples] == first
    fresh = real_gold_from_example(examples[0])
    assert (first[0].heads, first[0].labels) == (fresh.heads, fresh.labels)
    parser.set_labels(parser.label_data)
    renewed = parser.example_gold(examples[0])
    assert renewed is not first[0] and renewed.heads == first[0].heads


def test_tagger_and_parser_share_one_tok2vec():
    """A tagger and a parser listening to one tok2vec (spacy.Tok2VecListener.v1):
    both train, and the parser's gradient alone reaches the shared encoder."""
    base = load_config(PARSER_CFG, PATHS)
    cfg = Config(base)
    cfg["nlp"]["pipeline"] = ["tok2vec", "tagger", "parser"]
    t2v = dict(cfg["components"]["parser"]["model"]["tok2vec"])
    cfg["components"]["tok2vec"] = {"factory": "tok2vec", "model": t2v}
    listener = {
        "@architectures": "spacy.Tok2VecListener.v1", "width": t2v["width"], "upstream": "tok2vec", "grad_factor": 1.0,
    }
    cfg["components"]["parser"]["model"]["tok2vec"] = dict(listener)
    cfg["components"]["tagger"] = {
        "factory": "tagger",
        "label_attr": "upos",
        "model": {"@architectures": "spacy.Tagger.v1", "nO": None, "tok2vec": {**listener, "grad_factor": 0.0}},
    }
    cfg["training"]["score_weights"] = {"pos_acc": 0.5, "dep_las": 0.5}
    examples = read_conllu(TRAIN, limit=120)
    nlp, losses = _small_run(Config().from_str(cfg.to_str()), examples, 1)
    shared = nlp.components["tok2vec"]
    assert len(shared.listeners) == 2
    before = [p.copy() for p in _params(shared.model)]
    from thinc.api import Adam

    losses = nlp.update(examples[:16], drop=0.1, sgd=Adam(0.001))
    assert losses["tok2vec"] > 0 and losses["parser"] > 0 and losses["tagger"] > 0
    assert any(not numpy.array_equal(a, b) for a, b in zip(before, _params(shared.model)))
    # control: with the parser's grad_factor at 0 too, the shared encoder does not move
    for node in nlp.components["parser"].model.walk():
        if node.name == "tok2vec_listener":
            node.attrs["grad_factor"] = 0.0
    before = [p.copy() for p in _params(shared.model)]
    nlp.update(examples[16:32], drop=0.1, sgd=Adam(0.001))
    assert all(numpy.array_equal(a, b) for a, b in zip(before, _params(shared.model)))
    # a full run with the loop: both components' scores, weighted
    rows = []
    train(
        cfg,
        overrides={
            "training.max_steps": 20, "training.eval_frequency": 20,
            "corpora.train.limit": 120, "corpora.dev.limit": 50,
        },
        on_evaluation=rows.append,
    )
    assert rows[-1].scores["pos_acc"] > 0.2 and rows[-1].scores["dep_uas"] > 0
    assert rows[-1].score == pytest.approx(0.5 * rows[-1].scores["pos_acc"] + 0.5 * rows[-1].scores["dep_las"])


def _params(model):
    return [node.get_param(name) for node in model.walk() for name in node.param_names if node.has_param(name)]


# ------------------------------------------------------------------ spaces


@pytest.mark.parametrize("name", ["ner", "parser"])
def test_spaces_validate(name):
    space = Space.from_disk(REPO / "spaces" / f"{name}.cfg")
    space.validate()
    dims = {d.name for d in space.dimensions}
    prefix = f"components.{name}.model"
    assert {
        f"{prefix}.nr_feature_tokens", f"{prefix}.hidden_width", f"{prefix}.maxout_pieces", f"{prefix}.use_upper",
        f"{prefix}.tok2vec.width", f"{prefix}.tok2vec.depth", f"{prefix}.tok2vec.embed_size",
        f"{prefix}.tok2vec.maxout_pieces", "training.optimizer.learn_rate", "training.dropout",
        "training.batcher.size.start", "training.batcher.size.stop",
    } <= dims


@pytest.mark.parametrize("cut", [0, 40])
def test_long_documents_are_cut_into_oracle_segments(cut, monkeypatch):
    """A 'document' of many sentences: with a cut size the episode starts from
    oracle segments and stops after the drawn number of moves; without, it runs
    to the end. Either way it trains and decodes the whole document."""
    import random

    from archs.features import Doc, Featurizer
    from search.corpora.example import Example
    from search.corpora.iob2 import biluo_to_spans

    sents = read_iob2(NER_TRAIN, limit=40)
    words = [w for eg in sents for w in eg.doc.words]
    tags = [t for eg in sents for t in eg.gold["ner"]]
    long_doc = Example(Doc(words, Featurizer()(words)), {"ner": tags, "entities": biluo_to_spans(tags)})
    assert len(long_doc) > 4 * 40
    from search.tasks.parsing.ner import BiluoSystem

    cuts = []
    segments = BiluoSystem.segments

    def spy(self, state, gold, max_moves, oracle=None):
        out = segments(self, state, gold, max_moves, oracle)
        cuts.append((state.length, max_moves, len(out)))
        return out

    monkeypatch.setattr(BiluoSystem, "segments", spy)
    config = load_config(NER_CFG, {"components.ner.update_with_oracle_cut_size": cut})
    random.seed(0)
    nlp, losses = _small_run(config, [long_doc, *sents[:3]], 2, batch=4)
    assert all(loss["ner"] > 0 for loss in losses)
    if cut:  # only the long doc is cut, into segments of the drawn length in [cut/2, 2*cut]
        assert [c[0] for c in cuts] == [len(long_doc)] * 2
        assert all(20 <= m <= 80 and n == -(-len(long_doc) // m) for _, m, n in cuts), cuts
    else:
        assert cuts == []
    ents = nlp.predict([long_doc.doc])["ner"][0]
    assert all(0 <= s < e <= len(long_doc) for s, e, _ in ents)
