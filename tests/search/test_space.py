"""Search spaces (search/space.py): parsing, sampling, validation, conditional
options, the `archsweep space` command and the Optuna trial as a suggester.
Pure core: no Ray, no MLflow."""

import math
from pathlib import Path

import optuna
import pytest
from confection import Config
from search_testing import PATHS, TAGGER_CFG, run_cli
from sweep_fixtures import SPACE, TAGGER_DIMENSIONS

from search.space import DIST_KEY, DefaultSuggester, Options, RandomSuggester, Space, SpaceError
from search.sweep.trial import SEED_KEY, FixedSuggester, trial_config
from search.training.config import fill_config, load_config
from search.training.loop import train

T2V = "components.tagger.model.tok2vec"

# A few training steps on a few sentences: enough to build and update the model.
TINY = {
    **PATHS, "corpora.train.limit": 40, "corpora.dev.limit": 20,
    "training.max_epochs": 0, "training.max_steps": 4, "training.eval_frequency": 2,
}


@pytest.fixture(scope="module")
def space() -> Space:
    return Space.from_disk(SPACE)


def _tagger_space_with(dotted: str, block) -> Space:
    """spaces/tagger.cfg with `block` put at `dotted` (added or replacing)."""
    config = Config().from_disk(SPACE, interpolate=False)
    node = config
    *parents, key = dotted.split(".")
    for part in parents:
        node = node[part]
    node[key] = block
    return Space(config, source="edited.cfg")


# ---------------------------------------------------------------- parsing


def test_tagger_space_has_thirteen_dimensions(space):
    assert [d.name for d in space.dimensions] == TAGGER_DIMENSIONS
    assert all(d.condition is None for d in space.dimensions)
    assert space.source == str(SPACE)
    assert len(space.digest) == 16 and space.digest == Space.from_disk(SPACE).digest


def test_tagger_space_describes_ranges_and_defaults(space):
    shown = {d.name: (d.describe(), d.distribution.default) for d in space.dimensions}
    assert shown == {
        f"{T2V}.width": ("ordinal 64 < 96 < 128 < 256", 96),
        f"{T2V}.depth": ("int uniform [2, 8]", 4),
        f"{T2V}.embed_size": ("int log-uniform [2000, 10000]", 2000),
        f"{T2V}.window_size": ("int uniform [1, 2]", 1),
        f"{T2V}.maxout_pieces": ("int uniform [2, 3]", 3),
        f"{T2V}.subword_features": ("choice of true, false", True),
        f"{T2V}.dropout": ("choice of null, 0.1, 0.2", None),
        f"{T2V}.pretrained_vectors": ("choice of null, ${paths.vectors}", None),
        "training.dropout": ("uniform [0, 0.3] step 0.05", 0.1),
        "training.batcher.size.start": ("ordinal 100 < 250 < 500", 100),
        "training.batcher.size.stop": ("ordinal 500 < 1000 < 2000", 1000),
        "training.optimizer.use_averages": ("choice of false, true", False),
        "training.optimizer.learn_rate": ("log-uniform [0.0001, 0.01]", 0.001),
    }


def test_overrides_change_the_space_and_its_hash(space):
    narrowed = Space.from_disk(SPACE, {f"{T2V}.width.values": [32, 64], f"{T2V}.width.default": 32})
    width = narrowed.dimensions[0]
    assert (width.describe(), width.distribution.default) == ("ordinal 32 < 64", 32)
    assert narrowed.digest != space.digest


def test_a_config_without_distributions_is_no_space():
    with pytest.raises(SpaceError, match="no distributions found"):
        Space.from_disk(TAGGER_CFG)


# ---------------------------------------------------------------- sampling


def test_default_suggester_gives_the_defaults_which_are_configs_tagger(space):
    config, values = space.sample(DefaultSuggester(space))
    assert values == {d.name: d.distribution.default for d in space.dimensions}
    filled = fill_config(config)
    baseline = load_config(TAGGER_CFG)
    # The space's defaults are the baseline config (only the training budget differs).
    assert filled["components"] == baseline["components"]
    assert filled["training"]["optimizer"] == baseline["training"]["optimizer"]
    assert filled["training"]["batcher"] == baseline["training"]["batcher"]
    assert filled["training"]["dropout"] == baseline["training"]["dropout"]


def test_random_sampling_is_deterministic_and_gives_a_plain_config(space):
    config_a, values_a = space.sample(RandomSuggester(7))
    config_b, values_b = space.sample(RandomSuggester(7))
    _, values_c = space.sample(RandomSuggester(8))
    assert values_a == values_b and config_a.to_str() == config_b.to_str()
    assert values_a != values_c
    assert list(values_a) == TAGGER_DIMENSIONS
    text = config_a.to_str()
    assert DIST_KEY not in text and "distributions" not in text
    # Every value is in its dimension's range and is what the config holds.
    for dim in space.dimensions:
        value = values_a[dim.name]
        node = config_a
        for part in dim.name.split("."):
            node = node[part]
        assert node == value, dim.name
        dist = dim.distribution
        if hasattr(dist, "values"):
            assert value in dist.values, dim.name
        else:
            assert dist.low <= value <= dist.high, dim.name
    fill_config(config_a)  # passes the training config's checks


def test_a_sampled_config_trains(space):
    config, values = space.sample(RandomSuggester(3))
    rows = []
    result = train(config, overrides=TINY, on_evaluation=rows.append)
    assert [row.step for row in rows] == [2, 4]
    assert result.stop_reason == "max_steps 4 reached"
    assert 0.0 < result.best_score <= 1.0
    assert all(math.isfinite(row.losses["tagger"]) for row in rows)


# ---------------------------------------------------------------- validation


def test_the_tagger_space_validates_with_training_dimensions(space):
    # training.dropout and training.optimizer.learn_rate are dimensions of it.
    names = {d.name for d in space.dimensions}
    assert {"training.dropout", "training.optimizer.learn_rate"} <= names
    space.validate()


@pytest.mark.parametrize(
    "dotted,block,message",
    [
        pytest.param(
            f"{T2V}.widht", {DIST_KEY: "ordinal.v1", "values": [64, 96]},
            f"{T2V}.widht: 'widht' is not a parameter of {T2V} (@architectures = 'spacy.HashEmbedCNN.v1')",
            id="not-a-parameter",
        ),
        pytest.param(
            "training.bogus", {DIST_KEY: "uniform.v1", "low": 0.0, "high": 1.0},
            "training.bogus: 'bogus' is not a parameter of training",
            id="unknown-training-setting",
        ),
    ],
)
def test_validate_names_a_target_that_is_no_parameter(dotted, block, message):
    space = _tagger_space_with(dotted, block)  # parses: the distribution itself is fine
    assert dotted in [d.name for d in space.dimensions]
    with pytest.raises(SpaceError) as err:
        space.validate()
    assert message in str(err.value)


@pytest.mark.parametrize(
    "dotted,block,message",
    [
        pytest.param(
            "training.optimizer.learn_rate", {DIST_KEY: "loguniform.v1", "low": 0.01, "high": 0.001},
            "training.optimizer.learn_rate (loguniform.v1): low (0.01) must be below high (0.001)", id="low-above-high",
        ),
        pytest.param(
            "training.dropout", {DIST_KEY: "uniform.v1", "low": 0.3, "high": 0.3},
            "training.dropout (uniform.v1): low (0.3) must be below high (0.3)", id="low-equals-high",
        ),
        pytest.param(
            f"{T2V}.embed_size", {DIST_KEY: "int_loguniform.v1", "low": 0, "high": 100},
            f"{T2V}.embed_size (int_loguniform.v1): a log-uniform range needs low > 0, got 0", id="log-low-zero",
        ),
        pytest.param(
            "training.optimizer.learn_rate", {DIST_KEY: "loguniform.v1", "low": -1e-3, "high": 1e-2},
            "training.optimizer.learn_rate (loguniform.v1): a log-uniform range needs low > 0", id="log-low-negative",
        ),
        pytest.param(
            f"{T2V}.depth", {DIST_KEY: "gaussian.v1", "mu": 4},
            f"{T2V}.depth: unknown distribution 'gaussian.v1'; expected one of: choice.v1", id="unknown-distribution",
        ),
        pytest.param(
            f"{T2V}.subword_features", {DIST_KEY: "choice.v1", "values": []},
            f"{T2V}.subword_features (choice.v1): needs at least one value", id="empty-choice",
        ),
        pytest.param(
            f"{T2V}.dropout", {DIST_KEY: "choice.v1", "values": [0.1, [0.2, 0.3]]},
            f"{T2V}.dropout (choice.v1): values must be numbers, strings, booleans or null, got [0.2, 0.3]",
            id="non-primitive-choice",
        ),
        pytest.param(
            f"{T2V}.window_size", {DIST_KEY: "int_uniform.v1", "lo": 1, "high": 2},
            f"{T2V}.window_size (int_uniform.v1): missing a required argument: 'low'", id="misspelt-argument",
        ),
        pytest.param(
            f"{T2V}.width", {DIST_KEY: "ordinal.v1", "values": [64, 96], "default": 128},
            f"{T2V}.width (ordinal.v1): default 128 is not one of [64, 96]", id="default-not-a-value",
        ),
        pytest.param(
            f"{T2V}.width", {DIST_KEY: "ordinal.v1", "values": [64, 96], "enqueue": [128]},
            f"{T2V}.width (ordinal.v1): enqueue value 128 is not a value of this distribution (ordinal 64 < 96)",
            id="enqueue-not-a-value",
        ),
        pytest.param(
            f"{T2V}.subword_features", {DIST_KEY: "choice.v1", "values": [True, False], "enqueue": [1]},
            f"{T2V}.subword_features (choice.v1): enqueue value 1 is not a value of this distribution (choice of true, false)",
            id="enqueue-one-is-not-true",
        ),
        pytest.param(
            "training.dropout", {DIST_KEY: "uniform.v1", "low": 0.0, "high": 0.3, "step": 0.05, "enqueue": [0.12]},
            "training.dropout (uniform.v1): enqueue value 0.12 is not a value of this distribution (uniform [0, 0.3] step 0.05)",
            id="enqueue-off-the-step",
        ),
        pytest.param(
            f"{T2V}.depth", {DIST_KEY: "int_uniform.v1", "low": 1, "high": 4, "enqueue": [2.5]},
            f"{T2V}.depth (int_uniform.v1): enqueue value 2.5 is not a value of this distribution (int uniform [1, 4])",
            id="enqueue-not-an-integer",
        ),
        pytest.param(
            "training.optimizer.learn_rate", {DIST_KEY: "loguniform.v1", "low": 1e-4, "high": 1e-2, "enqueue": 0.001},
            "training.optimizer.learn_rate (loguniform.v1): enqueue must be a list of values, got 0.001",
            id="enqueue-not-a-list",
        ),
    ],
)
def test_a_bad_distribution_is_named_by_its_dotted_key(dotted, block, message):
    with pytest.raises(SpaceError) as err:
        _tagger_space_with(dotted, block)
    assert message in str(err.value)


def test_a_bad_space_file_is_named_by_its_path(tmp_path):
    config = Config().from_disk(SPACE, interpolate=False)
    config["training"]["optimizer"]["learn_rate"] = {DIST_KEY: "loguniform.v1", "low": 0.0, "high": 0.01}
    path = tmp_path / "bad.cfg"
    path.write_text(config.to_str())
    with pytest.raises(SpaceError, match=r"training\.optimizer\.learn_rate \(loguniform\.v1\): a log-uniform range needs low > 0"):
        Space.from_disk(path)
    with pytest.raises(FileNotFoundError, match="search space not found"):
        Space.from_disk(tmp_path / "missing.cfg")


def test_choice_default_null_is_kept():
    space = _tagger_space_with(f"{T2V}.dropout", {DIST_KEY: "choice.v1", "values": [0.1, None, 0.2], "default": None})
    dim = next(d for d in space.dimensions if d.name == f"{T2V}.dropout")
    assert dim.distribution.default is None


# ---------------------------------------------------------------- conditional options

CONDITIONAL_SPACE = """
[paths]
train = "data/ud_english_ewt/en_ewt-ud-train.sample.conllu"
dev = "data/ud_english_ewt/en_ewt-ud-dev.sample.conllu"

[nlp]
pipeline = ["tagger"]

[corpora]

[corpora.train]
@readers = "archsweep.ConllUCorpus.v1"
path = ${paths.train}

[corpora.dev]
@readers = "archsweep.ConllUCorpus.v1"
path = ${paths.dev}

[components]

[components.tagger]
factory = "tagger"
label_attr = "upos"

[components.tagger.model]
@architectures = "spacy.Tagger.v1"
nO = null

[components.tagger.model.tok2vec]
@distributions = "options.v1"
default = "cnn"

[components.tagger.model.tok2vec.cnn]
@architectures = "spacy.HashEmbedCNN.v1"
depth = 2
embed_size = 1000
window_size = 1
maxout_pieces = 3
subword_features = true
pretrained_vectors = null

[components.tagger.model.tok2vec.cnn.width]
@distributions = "ordinal.v1"
values = [32, 64]

[components.tagger.model.tok2vec.chars]
@architectures = "spacy.HashCharEmbedCNN.v1"
width = 32
depth = 2
embed_size = 1000
window_size = 1
maxout_pieces = 3
nC = 4
pretrained_vectors = null

[components.tagger.model.tok2vec.chars.nM]
@distributions = "int_uniform.v1"
low = 8
high = 16
step = 8

[training]
seed = 0
max_epochs = 1

[training.batcher]
@batchers = "spacy.batch_by_words.v1"
size = 500

[training.optimizer]
@optimizers = "Adam.v1"

[training.optimizer.learn_rate]
@distributions = "loguniform.v1"
low = 0.0001
high = 0.01
"""

COND = {
    T2V: (None, "options cnn, chars", "cnn", ""),
    f"{T2V}.cnn.width": ((T2V, "cnn"), "ordinal 32 < 64", 32, f"{T2V} = cnn"),
    f"{T2V}.chars.nM": ((T2V, "chars"), "int uniform [8, 16] step 8", 8, f"{T2V} = chars"),
    "training.optimizer.learn_rate": (None, "log-uniform [0.0001, 0.01]", 0.001, ""),
}


@pytest.fixture()
def conditional_path(tmp_path) -> Path:
    path = tmp_path / "conditional.cfg"
    path.write_text(CONDITIONAL_SPACE)
    return path


def test_conditional_dimensions_carry_their_condition(conditional_path):
    space = Space.from_disk(conditional_path)
    assert {d.name: (d.condition, d.describe(), d.distribution.default) for d in space.dimensions} == {
        name: spec[:3] for name, spec in COND.items()
    }
    assert isinstance(space.dimensions[0].distribution, Options)
    space.validate()


def test_sampling_gives_only_the_chosen_options_dimensions(conditional_path):
    space = Space.from_disk(conditional_path)
    expected = {
        "cnn": {T2V, f"{T2V}.cnn.width", "training.optimizer.learn_rate"},
        "chars": {T2V, f"{T2V}.chars.nM", "training.optimizer.learn_rate"},
    }
    architectures = {"cnn": "spacy.HashEmbedCNN.v1", "chars": "spacy.HashCharEmbedCNN.v1"}
    chosen = set()
    for seed in range(8):
        config, values = space.sample(RandomSuggester(seed))
        option = values[T2V]
        chosen.add(option)
        assert set(values) == expected[option], (seed, values)
        tok2vec = config["components"]["tagger"]["model"]["tok2vec"]
        assert tok2vec["@architectures"] == architectures[option]
        # The chosen block replaces the options block: no option names, no distributions left.
        assert DIST_KEY not in config.to_str() and "cnn" not in tok2vec and "chars" not in tok2vec
        assert (tok2vec.get("nM"), tok2vec["width"]) == (
            (values[f"{T2V}.chars.nM"], 32) if option == "chars" else (None, values[f"{T2V}.cnn.width"])
        )
    assert chosen == {"cnn", "chars"}  # seeds 0-7 cover both options


def test_each_option_trains(conditional_path):
    space = Space.from_disk(conditional_path)
    for option in ("cnn", "chars"):
        config, values = space.sample(DefaultSuggester(space, {T2V: option}))
        assert values[T2V] == option
        result = train(config, overrides=TINY)
        assert result.stop_reason == "max_steps 4 reached" and 0.0 < result.best_score <= 1.0, option


@pytest.mark.parametrize(
    "option",
    [
        "cnn",
        "chars",
    ],
)
def test_validate_checks_every_option(option):
    config = Config().from_str(CONDITIONAL_SPACE, interpolate=False)
    config["components"]["tagger"]["model"]["tok2vec"][option]["bogus"] = 3
    space = Space(config, source="conditional.cfg")  # parses: the error is in one option's block
    with pytest.raises(SpaceError) as err:
        space.validate()
    message = str(err.value)
    assert f"conditional.cfg (with {T2V} = {option})" in message
    assert f"{T2V}.bogus: unexpected argument" in message


def test_validate_names_a_bad_target_inside_an_option():
    config = Config().from_str(CONDITIONAL_SPACE, interpolate=False)
    config["components"]["tagger"]["model"]["tok2vec"]["chars"]["nMM"] = {DIST_KEY: "int_uniform.v1", "low": 8, "high": 16}
    with pytest.raises(SpaceError, match=rf"{T2V}\.chars\.nMM: 'nMM' is not a parameter of {T2V}\.chars"):
        Space(config, source="conditional.cfg").validate()


def test_cli_space_prints_the_condition_column(conditional_path):
    proc = run_cli("space", str(conditional_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["dimension", "distribution", "default"] and lines[0].rstrip().endswith("only when")
    column = lines[0].index("only when")
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == set(COND)
    for name, (_, describe, default, condition) in COND.items():
        assert describe in rows[name], name
        assert rows[name][column:].strip() == condition, name
    assert lines[-1] == f"4 dimensions; space hash {Space.from_disk(conditional_path).digest}"


def test_cli_space_on_the_tagger_space_and_a_bad_one(tmp_path):
    proc = run_cli("space", "spaces/tagger.cfg")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("13 dimensions; space hash ")
    assert proc.stdout.splitlines()[-3:-1] == [
        "enqueued after the defaults: components.tagger.model.tok2vec.pretrained_vectors = ${paths.vectors}",
        "enqueued after the defaults: training.optimizer.use_averages = true",
    ]
    assert "ordinal 64 < 96 < 128 < 256" in proc.stdout
    config = Config().from_disk(SPACE, interpolate=False)
    config["components"]["tagger"]["model"]["tok2vec"]["widht"] = {DIST_KEY: "ordinal.v1", "values": [64, 96]}
    bad = tmp_path / "bad.cfg"
    bad.write_text(config.to_str())
    proc = run_cli("space", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {T2V}.widht: 'widht' is not a parameter"), proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- Optuna as the suggester


def test_an_optuna_trial_is_a_suggester(space):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    trial = study.ask()
    config, values = space.sample(trial)
    assert list(values) == TAGGER_DIMENSIONS
    assert set(trial.params) == set(TAGGER_DIMENSIONS)
    # An ordinal is an index for Optuna (so TPE exploits the order) and the real width in the config.
    width_name = f"{T2V}.width"
    index = trial.params[width_name]
    assert trial.distributions[width_name] == optuna.distributions.IntDistribution(0, 3)
    assert values[width_name] == [64, 96, 128, 256][index]
    assert config["components"]["tagger"]["model"]["tok2vec"]["width"] == values[width_name]
    assert trial.distributions["training.optimizer.learn_rate"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert trial.distributions["training.dropout"] == optuna.distributions.FloatDistribution(0.0, 0.3, step=0.05)
    assert trial.distributions[f"{T2V}.subword_features"] == optuna.distributions.CategoricalDistribution([True, False])
    # A trial's raw Optuna values (index for the ordinal) replay to the same config, seed added.
    replayed, replay_values = trial_config(space, {**trial.params, SEED_KEY: 1234})
    assert replay_values == values
    assert replayed["training"]["seed"] == 1234
    replayed["training"]["seed"] = config["training"]["seed"]
    assert replayed.to_str() == config.to_str()
    # Same sampler seed, same proposal.
    again = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0)).ask()
    assert space.sample(again)[1] == values


def test_fixed_suggester_names_a_missing_dimension(space):
    with pytest.raises(KeyError, match=f"no sampled value for dimension '{T2V}.width'"):
        space.sample(FixedSuggester({}))
