"""The entity_linker component on the bundled real sample: training with the cosine loss,
candidates / NIL / prior and context switches, scores, nO against the KB, save/load/evaluate."""

import numpy
import pytest
from confection import Config
from search_testing import REPO, run_cli

from search.corpora.entity_linker import NIL, Mention, MentionDoc, read_elevant
from search.corpora.example import Example
from search.tasks.entity_linker.component import EntityLinkerComponent, score_links
from search.tasks.entity_linker.kb import KnowledgeBase
from search.training.loop import train
from search.training.pipeline import build_component

EL = REPO / "data" / "entity_linking"
CFG = REPO / "configs" / "entity_linker.cfg"
KB = EL / "kb.sample"
PATHS = {
    "paths.train": str(EL / "wiki-fair-v2-train.sample.jsonl"),
    "paths.train_oke": str(EL / "oke-2016-train.sample.jsonl"),
    "paths.dev": str(EL / "wiki-fair-v2-test.sample.jsonl"),
    "paths.dev_oke": str(EL / "oke-2016-eval.sample.jsonl"),
    "paths.kb": str(KB),
}
SMALL = {"components.entity_linker.model.tok2vec.width": 32, "components.entity_linker.model.tok2vec.depth": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("el") / "run"
    rows = []
    result = train(
        CFG, out, overrides={**PATHS, **SMALL, "training.max_epochs": 3, "training.eval_frequency": 10},
        on_evaluation=rows.append,
    )
    return result, rows, out


def component(incl_prior=True, incl_context=True, nO=None) -> EntityLinkerComponent:
    block = Config().from_disk(CFG, interpolate=False)["components"]["entity_linker"]
    block = {**block, "kb": str(KB), "incl_prior": incl_prior, "incl_context": incl_context}
    block["model"] = {**block["model"], "nO": nO, "tok2vec": {**block["model"]["tok2vec"], "width": 32, "depth": 1}}
    return build_component("entity_linker", block)


def test_training_lowers_the_cosine_loss_and_scores(trained):
    result, rows, out = trained
    losses = [row.losses["entity_linker"] for row in rows]
    assert losses[-1] < losses[0]
    scores = rows[-1].scores
    assert set(scores) >= {"nel_acc", "nel_micro_p", "nel_micro_r", "nel_micro_f", "nel_candidate_recall"}
    # accuracy over linkable mentions can never beat the KB's candidate recall
    assert 0.3 < scores["nel_acc"] <= scores["nel_candidate_recall"] <= 1.0
    assert (out / "model-best" / "entity_linker.bin").is_file()


def test_saved_model_evaluates_on_an_elevant_file(trained):
    result, rows, out = trained
    proc = run_cli("evaluate", str(out / "model-best"), str(EL / "oke-2016-eval.sample.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "nel_micro_f" in proc.stdout and "nel_candidate_recall" in proc.stdout


def _doc(words, mentions):
    from archs.features import Featurizer

    return MentionDoc(words, Featurizer()(words), mentions)


def test_candidates_nil_and_the_prior_context_switches():
    kb = KnowledgeBase.from_disk(KB)
    alias = next(a for a, c in kb.aliases.items() if len(c) > 1 and len({x.prior for x in c}) > 1)
    single = next(a for a, c in kb.aliases.items() if len(c) == 1)
    words = ["In", "the", "story", ",", *alias.split(), "met", *single.split(), "and", "Zzyzx", "."]
    a0 = 4
    s0 = a0 + len(alias.split()) + 1
    z = s0 + len(single.split()) + 1
    doc = _doc(words, [Mention(a0, s0 - 1, alias), Mention(s0, z - 1, single), Mention(z, z + 1, "Zzyzx")])
    cands = kb.get_candidates(alias)
    el = component(incl_context=False)
    el.model.initialize(X=[doc])
    enc = el.model.ops.to_numpy(el.model.predict([doc]))[0]
    prior_only = el.link(doc, enc)
    assert prior_only == [cands[0].entity, kb.get_candidates(single)[0].entity, NIL]
    el.incl_prior, el.incl_context = False, True
    vecs = kb.vectors[[c.row for c in cands]]
    cos = vecs @ enc / (numpy.linalg.norm(vecs, axis=1) * numpy.linalg.norm(enc) + 1e-12)
    assert el.link(doc, enc)[0] == cands[int(numpy.argmax(cos))].entity
    el.incl_prior = True  # combined: prior + sim - prior * sim
    p = numpy.array([c.prior for c in cands])
    assert el.link(doc, enc)[0] == cands[int(numpy.argmax(p + cos - p * cos))].entity
    with pytest.raises(ValueError, match="both false"):
        component(incl_prior=False, incl_context=False)


def test_nO_follows_the_kb():
    assert component().model.get_ref("output_layer").get_dim("nO") == 50
    small = component(nO=16)
    assert small.kb.entity_vector_length == 16 and small.model.get_ref("output_layer").get_dim("nO") == 16
    with pytest.raises(ValueError, match="width 50"):
        component(nO=64)


def test_loss_gradient_goes_to_each_mentions_sentence():
    el = component()
    examples = read_elevant(EL / "oke-2016-eval.sample.jsonl")[:6]
    docs = [eg.doc for eg in examples]
    el.model.initialize(X=docs)
    outputs, _ = el.model.begin_update(docs)
    loss, d = el.get_loss(examples, outputs)
    assert d.shape == outputs.shape and loss > 0
    for i, eg in enumerate(examples):
        trained_on = any(k != NIL and k in el.kb for k in eg.gold["kb_ids"])
        assert bool(numpy.abs(d[i]).sum() > 0) == trained_on
    # finite difference on one row: the reported loss is sum(1 - cos) / n, the gradient of the sum
    rows, kb_rows = el._targets(examples)
    n = len(rows)
    eps = 1e-3
    bumped = outputs.copy()
    bumped[rows[0], 0] += eps
    loss2, _ = el.get_loss(examples, bumped)
    numpy.testing.assert_allclose((loss2 - loss) * n / eps, d[rows[0], 0], rtol=0.05, atol=1e-3)


def test_scores_count_nil():
    kb = KnowledgeBase.from_disk(KB)
    a, b = list(kb.row)[:2]
    doc = _doc(["x", "y", "z", "w"], [Mention(0, 1, kb.entities[0]["name"]), Mention(1, 2, "y"), Mention(2, 3, "z"), Mention(3, 4, "w")])
    eg = Example(doc, {"kb_ids": [a, b, NIL, NIL]})
    scores = score_links([eg], [[a, NIL, b, NIL]], kb)
    # linkable: a (right), b (NIL predicted); NIL gold: one wrong link (FP), one right NIL
    assert scores["nel_acc"] == 0.5
    assert scores["nel_micro_p"] == 0.5 and scores["nel_micro_r"] == 0.5 and scores["nel_micro_f"] == 0.5
    assert scores["nel_candidate_recall"] == 0.5  # the first mention is its entity's name


def test_listens_to_a_shared_tok2vec(tmp_path):
    """The linker's encoder can be a Tok2VecListener to a `tok2vec` component (as in spaCy)."""
    config = Config().from_disk(CFG, interpolate=False)
    config["nlp"]["pipeline"] = ["tok2vec", "entity_linker"]
    t2v = dict(config["components"]["entity_linker"]["model"]["tok2vec"], width=32, depth=1)
    config["components"]["tok2vec"] = {"factory": "tok2vec", "model": t2v}
    config["components"]["entity_linker"]["model"]["tok2vec"] = {
        "@architectures": "spacy.Tok2VecListener.v1", "width": 32, "upstream": "tok2vec", "grad_factor": 1.0,
    }
    path = tmp_path / "shared.cfg"
    config.to_disk(path)
    rows = []
    train(path, tmp_path / "run", overrides={**PATHS, "training.max_epochs": 2, "training.eval_frequency": 10}, on_evaluation=rows.append)
    assert rows[-1].losses["entity_linker"] < rows[0].losses["entity_linker"]
    assert rows[-1].losses["tok2vec"] > 0  # the listener's gradient reached the shared encoder
    assert rows[-1].scores["nel_acc"] > 0.3
