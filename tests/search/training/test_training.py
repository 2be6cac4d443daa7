"""search.training / search.pipeline / search.evaluate: real Thinc training on the bundled UD EWT sample (CPU)."""

import json
import math
import re
from collections import Counter

import numpy
import pytest
from search_testing import DEV, MULTITASK_CFG, PATHS, TAGGER_CFG, TRAIN, run_cli
from thinc.api import SGD, Adam, fix_random_seed

from archs.features import Doc
from search.corpora.conllu import read_conllu
from search.corpora.example import Example, count_words
from search.training.config import ConfigError, load_config
from search.training.device import use_cpu
from search.training.evaluate import evaluate
from search.training.loop import Evaluation, StopTraining, train
from search.training.pipeline import Pipeline, load_pipeline

SMALL = {**PATHS, "corpora.train.limit": 100, "corpora.dev.limit": 50}


def majority_baseline(attr: str) -> float:
    """Accuracy of always guessing the most frequent dev tag."""
    tags = Counter(t for eg in read_conllu(DEV) for t in eg.gold[attr] if t is not None)
    return tags.most_common(1)[0][1] / sum(tags.values())


# ------------------------------------------------------------------ one real run (conftest.trained_tagger)


def test_callback_receives_evaluation_rows(trained_tagger):
    result, rows = trained_tagger.result, trained_tagger.rows
    assert [row.step for row in rows] == [20, 40]
    assert rows == result.history
    assert all(isinstance(row, Evaluation) for row in rows)
    assert 0 < rows[0].words < rows[1].words
    assert 0 < rows[0].seconds < rows[1].seconds
    best = float("-inf")
    for row in rows:
        assert row.epoch == 0
        assert row.words_per_second > 0
        assert set(row.losses) == {"tagger"}
        assert all(math.isfinite(v) and v > 0 for v in row.losses.values())
        assert set(row.scores) == {"pos_acc"}
        assert row.score == row.scores["pos_acc"]  # score_weights: pos_acc = 1.0
        best = max(best, row.score)
        assert row.best_score == best
        assert row.peak_memory_mb > 0
        assert set(row.to_dict()) >= {"epoch", "step", "words", "losses", "scores", "score", "words_per_second"}
    assert result.stop_reason == "max_steps 40 reached"
    assert rows[1].losses["tagger"] < rows[0].losses["tagger"]  # it learns


def test_accuracy_clearly_above_chance(trained_tagger):
    result = trained_tagger.result
    chance = majority_baseline("upos")  # ~0.16 (NOUN)
    assert result.best_score > 0.5 > 3 * chance
    assert result.best_scores["pos_acc"] == result.best_score
    assert result.best_step in (20, 40)
    assert result.final_scores == result.history[-1].scores


def test_output_dir(trained_tagger):
    out, result = trained_tagger.output_dir, trained_tagger.result
    assert result.output_dir == out
    for model_dir in ("model-best", "model-last"):
        assert sorted(p.name for p in (out / model_dir).iterdir()) == ["config.cfg", "labels.json", "tagger.bin"]
        labels = json.loads((out / model_dir / "labels.json").read_text())
        assert len(labels["tagger"]) == 17 and "NOUN" in labels["tagger"]
    # The saved config is the filled one, and loads again unchanged.
    saved = load_config(out / "config.cfg")
    assert saved == load_config(TAGGER_CFG, {**PATHS, "training.max_steps": 40, "training.eval_frequency": 20})
    assert saved["training"]["max_seconds"] == 0
    assert saved["components"]["tagger"]["model"]["tok2vec"]["dropout"] is None
    assert saved["training"]["seed"] == "${system.seed}"
    scores = json.loads((out / "scores.json").read_text())
    assert scores["best_score"] == result.best_score
    assert scores["best_step"] == result.best_step
    assert scores["best_scores"] == result.best_scores
    assert scores["final_scores"] == result.final_scores
    assert scores["stop_reason"] == "max_steps 40 reached"
    assert [h["step"] for h in scores["history"]] == [20, 40]
    assert scores["history"][0]["losses"] == result.history[0].losses


def test_evaluate_reproduces_saved_scores(trained_tagger):
    out, result = trained_tagger.output_dir, trained_tagger.result
    best = evaluate(out / "model-best", DEV)
    assert best["pos_acc"] == result.best_score  # exactly
    assert best["words_per_second"] > 0
    last = evaluate(out / "model-last", DEV)
    assert last["pos_acc"] == result.final_scores["pos_acc"]


def test_cli_trains_from_the_saved_config(trained_tagger, tmp_path):
    proc = run_cli(
        "train", str(trained_tagger.output_dir / "config.cfg"), "-o", str(tmp_path / "again"),
        "--training.max_steps", "2", "--training.eval_frequency", "1", "--corpora.train.limit", "20",
    )
    assert proc.returncode == 0, proc.stderr
    assert "stopped: max_steps 2 reached" in proc.stdout
    assert (tmp_path / "again" / "model-best" / "tagger.bin").exists()


# ------------------------------------------------------------------ the loop


def _trace(result):
    return [(h.step, h.words, h.scores, h.losses) for h in result.history]


def test_same_seed_same_run_other_seed_other_run():
    overrides = {**SMALL, "training.max_steps": 10, "training.eval_frequency": 5}
    first = train(TAGGER_CFG, overrides=overrides)
    second = train(TAGGER_CFG, overrides=overrides)
    assert [h.step for h in first.history] == [5, 10]
    assert _trace(first) == _trace(second)
    assert first.best_score == second.best_score
    other = train(TAGGER_CFG, overrides={**overrides, "training.seed": 1})
    assert [h.losses for h in other.history] != [h.losses for h in first.history]
    assert [h.losses["tagger"] for h in other.history] != pytest.approx([h.losses["tagger"] for h in first.history])


def test_callback_returning_true_stops_training(tmp_path):
    seen = []

    def stop_at_second(row):
        seen.append(row.step)
        return len(seen) == 2

    result = train(
        TAGGER_CFG, tmp_path / "out",
        overrides={**SMALL, "training.max_steps": 50, "training.eval_frequency": 3},
        on_evaluation=stop_at_second,
    )
    assert result.stop_reason == "stopped by the evaluation callback"
    assert seen == [3, 6]
    assert [h.step for h in result.history] == [3, 6]
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["stop_reason"] == "stopped by the evaluation callback"
    assert (tmp_path / "out" / "model-last").is_dir()


def test_callback_returning_falsy_does_not_stop():
    result = train(
        TAGGER_CFG, overrides={**SMALL, "training.max_steps": 4, "training.eval_frequency": 2},
        on_evaluation=lambda row: None,
    )
    assert result.stop_reason == "max_steps 4 reached"
    assert [h.step for h in result.history] == [2, 4]


def test_model_best_is_the_best_evaluation_not_the_last(tmp_path):
    # learn_rate 0.3 makes the dev score jump around from one step to the next.
    out = tmp_path / "out"
    result = train(
        TAGGER_CFG, out,
        overrides={**SMALL, "training.max_steps": 8, "training.eval_frequency": 1, "training.optimizer.learn_rate": 0.3},
    )
    scores = [h.score for h in result.history]
    assert len(scores) == 8
    assert any(later < earlier for earlier, later in zip(scores, scores[1:])), scores
    assert result.best_score == max(scores)
    assert result.best_step == result.history[scores.index(max(scores))].step
    assert [h.best_score for h in result.history] == [max(scores[: i + 1]) for i in range(len(scores))]
    dev50 = tmp_path / "dev50.conllu"
    dev50.write_text(_first_sentences(DEV, 50), encoding="utf8")
    assert evaluate(out / "model-best", dev50)["pos_acc"] == result.best_score
    assert evaluate(out / "model-last", dev50)["pos_acc"] == scores[-1]


def _first_sentences(path, n):
    blocks = path.read_text(encoding="utf8").split("\n\n")
    return "\n\n".join(blocks[:n]) + "\n\n"


def test_max_epochs_and_final_evaluation():
    # 10 sentences (213 words) make a few ~100-word batches per epoch; the last
    # step is evaluated even though it is not a multiple of eval_frequency.
    result = train(
        TAGGER_CFG,
        overrides={**SMALL, "corpora.train.limit": 10, "training.max_epochs": 2, "training.eval_frequency": 1000},
    )
    assert result.stop_reason == "max_epochs 2 reached"
    assert len(result.history) == 1
    assert result.history[0].epoch == 2
    assert result.history[0].words == 2 * count_words(read_conllu(TRAIN, limit=10))
    assert result.history[0].step >= 2 * 2  # 213 words > 100 * 1.2: at least two batches an epoch


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way to nan
def test_non_finite_loss_stops_the_trial():
    # learn_rate 1e30: the first Adam step (weight decay included) blows the
    # weights up to inf, so the second batch's loss is nan.
    with pytest.raises(StopTraining) as info:
        train(
            TAGGER_CFG,
            overrides={**SMALL, "training.max_steps": 20, "training.eval_frequency": 10, "training.optimizer.learn_rate": 1e30},
        )
    message = str(info.value)
    # Losses stay on the device and are checked at the evaluation (step 10), which
    # names the first non-finite step and how many followed in that interval.
    match = re.fullmatch(
        r"component 'tagger' had a non-finite loss \((nan|inf|-inf)\) at step (\d+)"
        r"(?: \(and at (\d+) later steps, up to step (\d+)\))?",
        message,
    )
    assert match, message
    assert 1 <= int(match.group(2)) <= 10
    if match.group(3):
        assert int(match.group(2)) < int(match.group(4)) <= 10


def test_interval_losses_summed_in_step_order_and_non_finite_steps_named():
    from search.training.loop import _sum_losses

    per_step = {"tagger": [(1, numpy.float32(0.5)), (2, numpy.asarray(0.25, dtype="float32")), (3, 1.0)]}
    assert _sum_losses(per_step) == {"tagger": 1.75}
    assert per_step == {}  # emptied for the next interval
    per_step = {
        "tagger": [(4, 1.0), (5, numpy.float32("nan")), (6, 2.0), (7, numpy.asarray(float("inf")))],
        "tok2vec": [(4, 1.0)],
    }
    with pytest.raises(StopTraining, match=r"^component 'tagger' had a non-finite loss \(nan\) at step 5 \(and at 1 later steps, up to step 7\)$"):
        _sum_losses(per_step)


def test_config_errors_found_by_the_loop():
    with pytest.raises(ConfigError, match=r"^training\.train_corpus: 'corpora\.nosuch' is not a block under \[corpora\]"):
        train(TAGGER_CFG, overrides={**SMALL, "training.train_corpus": "corpora.nosuch"})
    with pytest.raises(ConfigError, match=r"^training\.score_weights: las not produced by the pipeline \(it scores: pos_acc\)"):
        train(TAGGER_CFG, overrides={**SMALL, "corpora.train.limit": 5, "training.score_weights.las": 1.0})


def test_train_a_config_object_with_dotted_overrides():
    config = load_config(TAGGER_CFG, PATHS)
    result = train(config, overrides={"training.max_steps": 2, "training.eval_frequency": 1, "corpora.train.limit": 10})
    assert [h.step for h in result.history] == [1, 2]


def test_train_a_config_object():
    config = load_config(TAGGER_CFG, {**SMALL, "training.max_steps": 2, "training.eval_frequency": 1})
    result = train(config)
    assert [h.step for h in result.history] == [1, 2]


# ------------------------------------------------------------------ shared tok2vec + listeners


def test_multitask_pipeline_trains_both_taggers():
    result = train(
        MULTITASK_CFG,
        overrides={**PATHS, "corpora.dev.limit": 100, "training.max_steps": 30, "training.eval_frequency": 15},
    )
    assert [h.step for h in result.history] == [15, 30]
    final = result.history[-1]
    assert set(final.losses) == {"tok2vec", "tagger", "xpos_tagger"}
    assert final.losses["tok2vec"] > 0
    assert set(final.scores) == {"pos_acc", "tag_acc"}
    assert final.scores["pos_acc"] > majority_baseline("upos") + 0.2
    assert final.scores["tag_acc"] > majority_baseline("xpos") + 0.2
    assert final.score == pytest.approx(0.5 * final.scores["pos_acc"] + 0.5 * final.scores["tag_acc"])


@pytest.fixture(scope="module")
def train_examples():
    return read_conllu(TRAIN, limit=40)


def build_multitask(upos_factor=1.0, xpos_factor=1.0, examples=None):
    use_cpu()
    config = load_config(
        MULTITASK_CFG,
        {
            **PATHS,
            "components.tagger.model.tok2vec.grad_factor": upos_factor,
            "components.xpos_tagger.model.tok2vec.grad_factor": xpos_factor,
        },
    )
    fix_random_seed(0)
    nlp = Pipeline.from_config(config.interpolate())
    if examples is not None:
        nlp.initialize(examples)
    return nlp, config


def flat_params(model):
    return numpy.concatenate(
        [node.get_param(name).ravel() for node in model.walk() for name in node.param_names if node.has_param(name)]
    )


def tok2vec_step(upos_factor, xpos_factor, examples, optimizer=None):
    """Change of the shared tok2vec's parameters in the second update (the
    taggers' output layers start at zero, so the first update sends no
    gradient into the tok2vec)."""
    nlp, _ = build_multitask(upos_factor, xpos_factor, examples)
    sgd = optimizer or SGD(0.001, L2=0.0, grad_clip=0.0, use_averages=False)
    t2v = nlp.components["tok2vec"].model
    before = flat_params(t2v)
    first = nlp.update(examples[:20], drop=0.0, sgd=sgd)
    after_first = flat_params(t2v)
    second = nlp.update(examples[20:], drop=0.0, sgd=sgd)
    after_second = flat_params(t2v)
    return after_first - before, after_second - after_first, first, second


def test_gradient_flows_from_both_listeners(train_examples):
    first_both, both, losses_first, losses_both = tok2vec_step(1.0, 1.0, train_examples)
    _, upos_only, _, losses_upos = tok2vec_step(1.0, 0.0, train_examples)
    _, xpos_only, _, _ = tok2vec_step(0.0, 1.0, train_examples)
    _, half_upos, _, _ = tok2vec_step(0.5, 0.0, train_examples)
    _, neither, _, losses_neither = tok2vec_step(0.0, 0.0, train_examples)

    # Zero-initialised softmax layers (spaCy's Tagger.v1): no tok2vec gradient in the first step.
    assert not first_both.any()
    assert losses_first["tok2vec"] == 0.0
    # Afterwards the shared encoder changes, through each listener separately...
    scale = numpy.abs(both).max()
    assert scale > 0
    assert numpy.abs(upos_only).max() > 1e-3 * scale
    assert numpy.abs(xpos_only).max() > 1e-3 * scale
    assert not numpy.allclose(upos_only, xpos_only)
    # ... and with both, by the sum of the two (plain SGD is linear in the gradient),
    numpy.testing.assert_allclose(both, upos_only + xpos_only, rtol=0, atol=1e-4 * scale)
    # each gradient scaled by its listener's grad_factor.
    numpy.testing.assert_allclose(half_upos, 0.5 * upos_only, rtol=0, atol=1e-4 * scale)
    # grad_factor 0 on both: zero gradient, no change.
    assert not neither.any()
    assert losses_neither["tok2vec"] == 0.0
    assert losses_both["tok2vec"] > losses_upos["tok2vec"] > 0
    # The taggers' own losses do not depend on the grad factors.
    assert losses_neither["tagger"] == losses_both["tagger"]
    assert losses_neither["xpos_tagger"] == losses_both["xpos_tagger"]


def test_zero_grad_factors_leave_the_tok2vec_unchanged_under_adam(train_examples):
    adam = Adam(0.001, L2=0.0, grad_clip=1.0, use_averages=False)
    first, second, _, _ = tok2vec_step(0.0, 0.0, train_examples, optimizer=adam)
    assert not first.any() and not second.any()
    adam = Adam(0.001, L2=0.0, grad_clip=1.0, use_averages=False)
    _, second, _, _ = tok2vec_step(1.0, 1.0, train_examples, optimizer=adam)
    assert second.any()


def _slots_empty(nlp):
    return all(
        node.attrs["slot"].docs is None and node.attrs["slot"].outputs == [] and node.attrs["slot"].d_outputs is None
        for t2v in nlp.tok2vecs
        for node in t2v.listeners
    )


def test_listeners_are_wired_to_the_shared_tok2vec_and_cleared(train_examples):
    nlp, _ = build_multitask(examples=train_examples)
    [t2v] = nlp.tok2vecs
    assert t2v is nlp.components["tok2vec"]
    assert [c.name for c in nlp.tasks] == ["tagger", "xpos_tagger"]
    assert len(t2v.listeners) == 2
    for listener, task in zip(t2v.listeners, nlp.tasks):
        assert any(node is listener for node in task.model.walk())
    assert _slots_empty(nlp)
    losses = nlp.update(train_examples[:10], drop=0.1, sgd=SGD(0.001))
    assert set(losses) == {"tok2vec", "tagger", "xpos_tagger"}
    assert _slots_empty(nlp)
    nlp.predict([eg.doc for eg in train_examples[:3]])
    assert _slots_empty(nlp)
    # A listener has no encoder of its own: without the shared tok2vec it refuses.
    with pytest.raises(ValueError, match="has not encoded"):
        nlp.components["tagger"].predict([eg.doc for eg in train_examples[:3]])


def test_listeners_are_cleared_when_a_component_fails(train_examples):
    nlp, _ = build_multitask(examples=train_examples)
    no_xpos = [Example(eg.doc, {k: v for k, v in eg.gold.items() if k != "xpos"}) for eg in train_examples[:5]]
    with pytest.raises(KeyError):
        nlp.update(no_xpos, drop=0.0, sgd=SGD(0.001))
    assert _slots_empty(nlp)


def test_empty_docs(train_examples):
    nlp, _ = build_multitask(examples=train_examples)
    empty = Example(Doc([]), {"upos": [], "xpos": [], "heads": [], "deps": []})
    t2v = nlp.components["tok2vec"].model
    before = flat_params(t2v)
    assert nlp.update([empty, empty], drop=0.0, sgd=SGD(0.001)) == {}
    numpy.testing.assert_array_equal(flat_params(t2v), before)
    assert nlp.predict([Doc([])]) == {"tagger": [[]], "xpos_tagger": [[]]}
    mixed = nlp.predict([Doc([]), Doc(["Hi", "there"]), Doc([])])
    assert [len(tags) for tags in mixed["tagger"]] == [0, 2, 0]
    assert [len(tags) for tags in mixed["xpos_tagger"]] == [0, 2, 0]
    assert set(nlp.update([empty, train_examples[0], empty], drop=0.0, sgd=SGD(0.001))) == {"tok2vec", "tagger", "xpos_tagger"}
    assert _slots_empty(nlp)


def test_multitask_save_load_round_trip(tmp_path, train_examples):
    nlp, config = build_multitask(examples=train_examples)
    optimizer = Adam(0.001)
    for start in range(0, 40, 10):
        nlp.update(train_examples[start : start + 10], drop=0.1, sgd=optimizer)
    dev = read_conllu(DEV, limit=60)
    docs = [eg.doc for eg in dev]
    expected = nlp.predict(docs)
    nlp.to_disk(tmp_path / "model", config)

    loaded, loaded_config = load_pipeline(tmp_path / "model")
    assert loaded_config == config
    assert list(loaded.components) == ["tok2vec", "tagger", "xpos_tagger"]
    for name, component in nlp.components.items():
        assert loaded.components[name].labels == component.labels
        numpy.testing.assert_array_equal(flat_params(loaded.components[name].model), flat_params(component.model))
    got = loaded.predict(docs)
    assert got == expected
    assert set(got) == {"tagger", "xpos_tagger"}
    assert len(set(tag for tags in got["xpos_tagger"] for tag in tags)) > 1  # not a constant guess
    assert loaded.evaluate(dev) == nlp.evaluate(dev)
    # and through search.evaluate, on a file
    scores = evaluate(tmp_path / "model", DEV)
    assert scores["pos_acc"] == nlp.evaluate(read_conllu(DEV))["pos_acc"]


def test_load_pipeline_rejects_a_non_model_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved model directory"):
        load_pipeline(tmp_path)


# ------------------------------------------------------------------ per-batch data path


def _per_doc_buffers(t2v):
    """The former gradient buffers: one zeroed array per doc, no flat buffer."""
    return lambda outputs: ([t2v.model.ops.alloc2f(*y.shape) for y in outputs], None)


@pytest.mark.parametrize("factors", [(1.0, 1.0), (0.5, 0.25)])
def test_flat_gradient_buffer_gives_the_per_doc_gradients(train_examples, factors):
    """The listeners add into one (n_tokens, width) buffer; the shared tok2vec must
    get exactly the gradients the per-doc buffers gave (same weights after the steps)."""
    results = []
    for per_doc in (False, True):
        nlp, _ = build_multitask(*factors, examples=train_examples)
        t2v = nlp.components["tok2vec"]
        if per_doc:
            t2v.gradient_buffers = _per_doc_buffers(t2v)
        else:
            views, flat = t2v.gradient_buffers([numpy.ones((2, 3), "f"), numpy.ones((0, 3), "f"), numpy.ones((4, 3), "f")])
            assert flat.shape == (6, 3) and not flat.any()
            assert [v.shape for v in views] == [(2, 3), (0, 3), (4, 3)]
            assert all(v.base is flat or v.base is flat.base for v in views)  # views, not copies
        sgd = SGD(0.001, L2=0.0, grad_clip=0.0, use_averages=False)
        losses = [nlp.update(train_examples[i : i + 10], drop=0.0, sgd=sgd) for i in (0, 10, 20)]
        results.append((flat_params(t2v.model), losses))
    (flat_weights, flat_losses), (doc_weights, doc_losses) = results
    assert (flat_weights == doc_weights).all()
    for a, b in zip(flat_losses, doc_losses):
        assert a["tagger"] == b["tagger"] and a["xpos_tagger"] == b["xpos_tagger"]
        assert float(a["tok2vec"]) == pytest.approx(float(b["tok2vec"]), rel=1e-5)  # summation order only
    assert float(flat_losses[-1]["tok2vec"]) > 0


def test_tagger_gold_ids_cached_equal_recomputed(train_examples):
    nlp, _ = build_multitask(examples=train_examples)
    tagger = nlp.components["tagger"]
    labels = {label: i for i, label in enumerate(tagger.labels)}
    batch = list(train_examples[:15])
    # a missing tag and a tag unseen in training on a copy of one example
    words = batch[0].doc.words
    tags = list(batch[0].gold["upos"])
    tags[0], tags[1] = None, "NOT-A-TAG"
    odd = Example(Doc(words), {**batch[0].gold, "upos": tags})
    batch.append(odd)
    expected = numpy.array(
        [labels.get(t, -1) if t is not None else -1 for eg in batch for t in eg.gold["upos"]], dtype="int32"
    )
    first = tagger.gold_ids(batch)
    assert first.dtype == numpy.int32 and (first == expected).all()
    assert odd.cache  # cached on the example ...
    cached = [tagger.example_gold_ids(eg) for eg in batch]
    assert all(a is b for a, b in zip(cached, [tagger.example_gold_ids(eg) for eg in batch]))  # ... and reused
    assert (tagger.gold_ids(batch) == expected).all()
    # new labels: the cache is not reused
    tagger.set_labels(list(reversed(tagger.labels)))
    relabelled = {label: i for i, label in enumerate(tagger.labels)}
    expected = numpy.array(
        [relabelled.get(t, -1) if t is not None else -1 for eg in batch for t in eg.gold["upos"]], dtype="int32"
    )
    assert (tagger.gold_ids(batch) == expected).all()


def test_tagger_loss_stays_on_the_device_and_matches_the_float_loss(train_examples):
    nlp, _ = build_multitask(examples=train_examples)
    tagger = nlp.components["xpos_tagger"]
    batch = list(train_examples[:8])
    tags = list(batch[1].gold["xpos"])
    tags[2] = None
    batch[1] = Example(batch[1].doc, {**batch[1].gold, "xpos": tags})
    ops = tagger.model.ops
    outputs = [ops.asarray2f(numpy.random.RandomState(i).dirichlet(numpy.ones(len(tagger.labels)), len(eg)).astype("f")) for i, eg in enumerate(batch)]
    loss, d = tagger.get_loss(batch, outputs)
    assert not isinstance(loss, float)  # a device (here numpy) scalar; read back by the training loop
    gold = tagger.gold_ids(batch)
    probs = numpy.concatenate(outputs)
    expected = probs.copy()
    known = gold >= 0
    expected[numpy.nonzero(known)[0], gold[known]] -= 1.0
    expected[~known] = 0.0
    assert (numpy.concatenate(d) == expected).all()
    assert [len(x) for x in d] == [len(eg) for eg in batch]
    assert float(loss) == pytest.approx(float((expected**2).sum()), rel=1e-6)
    assert not expected[len(batch[0]) + 2].any()  # the missing tag's row is zero


def test_use_params_swaps_in_the_optimizers_averages_and_restores(train_examples):
    nlp, _ = build_multitask(examples=train_examples)
    optimizer = Adam(0.01, use_averages=True)
    for start in range(0, 40, 10):
        nlp.update(train_examples[start : start + 10], drop=0.0, sgd=optimizer)
    models = [component.model for component in nlp.components.values()]
    live = [flat_params(model) for model in models]
    averaged_keys = set(optimizer.averages)
    with nlp.use_params(optimizer.averages):
        for model, own in zip(models, live):
            inside = flat_params(model)
            assert not numpy.array_equal(inside, own)  # every component (shared tok2vec included) averaged
            for node in model.walk():
                for name in node.param_names:
                    if (node.id, name) in averaged_keys:
                        numpy.testing.assert_array_equal(node.get_param(name), optimizer.averages[(node.id, name)])
    for model, own in zip(models, live):
        numpy.testing.assert_array_equal(flat_params(model), own)
    with nlp.use_params(None):  # an optimizer without averages: nothing changes
        for model, own in zip(models, live):
            numpy.testing.assert_array_equal(flat_params(model), own)


def test_use_averages_evaluates_and_saves_the_averaged_weights(tmp_path):
    # The averages do not change the updates, so both runs train the same weights; the one
    # with use_averages scores and saves their running average instead, as spaCy does.
    overrides = {**SMALL, "training.max_steps": 12, "training.eval_frequency": 4}
    plain = train(TAGGER_CFG, tmp_path / "plain", overrides=overrides)
    averaged = train(TAGGER_CFG, tmp_path / "averaged", overrides={**overrides, "training.optimizer.use_averages": True})
    assert [h.losses for h in averaged.history] == [h.losses for h in plain.history]
    assert [h.scores for h in averaged.history] != [h.scores for h in plain.history]
    plain_last, _ = load_pipeline(tmp_path / "plain" / "model-last")
    averaged_last, _ = load_pipeline(tmp_path / "averaged" / "model-last")
    assert not numpy.array_equal(
        flat_params(averaged_last.components["tagger"].model), flat_params(plain_last.components["tagger"].model)
    )
    dev50 = tmp_path / "dev50.conllu"
    dev50.write_text(_first_sentences(DEV, 50), encoding="utf8")
    assert evaluate(tmp_path / "averaged" / "model-last", dev50)["pos_acc"] == averaged.history[-1].scores["pos_acc"]
    assert evaluate(tmp_path / "averaged" / "model-best", dev50)["pos_acc"] == averaged.best_scores["pos_acc"]
