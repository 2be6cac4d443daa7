"""search.config: overrides, filled defaults, and errors that name the dotted key."""

import re

import pytest
from confection import Config
from search_testing import MULTITASK_CFG, TAGGER_CFG

from search.training.config import TRAINING_DEFAULTS, ConfigError, fill_config, load_config, parse_overrides

# ------------------------------------------------------------------ parse_overrides


def test_parse_overrides_values():
    args = [
        "--training.max_epochs", "5",
        "--a.b=true",
        "--training.dropout", "0.25",
        "--training.optimizer.learn_rate=1e-3",
        "--nlp.pipeline", '["tok2vec", "tagger"]',
        "--paths.train", "data/x-y.conllu",
        "--paths.dev=a=b",
        "--x.y", "null",
        "--x.z", '"5"',
        "--training.seed", "-1",
    ]
    assert parse_overrides(args) == {
        "training.max_epochs": 5,
        "a.b": True,
        "training.dropout": 0.25,
        "training.optimizer.learn_rate": 0.001,
        "nlp.pipeline": ["tok2vec", "tagger"],
        "paths.train": "data/x-y.conllu",
        "paths.dev": "a=b",
        "x.y": None,
        "x.z": "5",
        "training.seed": -1,
    }


def test_parse_overrides_types():
    parsed = parse_overrides(["--a.int", "5", "--a.float", "5.0", "--a.false", "false"])
    assert type(parsed["a.int"]) is int and type(parsed["a.float"]) is float and parsed["a.false"] is False
    assert parse_overrides([]) == {}


def test_parse_overrides_dashes_become_underscores():
    assert parse_overrides(["--training.max-epochs", "3"]) == {"training.max_epochs": 3}


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--training.max_epochs"], r"--training\.max_epochs needs a value"),
        (["--training.max_epochs", "--training.seed", "1"], r"--training\.max_epochs needs a value"),
        (["training.max_epochs", "5"], r"unexpected argument 'training\.max_epochs'"),
        (["--max_epochs", "5"], r"unexpected argument '--max_epochs'"),
    ],
)
def test_parse_overrides_errors(args, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_overrides(args)


# ------------------------------------------------------------------ load_config


def test_load_config_fills_every_default():
    config = load_config(TAGGER_CFG)
    T = config["training"]
    for key, value in TRAINING_DEFAULTS.items():
        assert key in T, key
    assert T["max_seconds"] == 0
    assert T["train_corpus"] == "corpora.train"
    assert T["dev_corpus"] == "corpora.dev"
    assert T["max_epochs"] == 5  # given values are kept
    tok2vec = config["components"]["tagger"]["model"]["tok2vec"]
    assert "dropout" in tok2vec and tok2vec["dropout"] is None
    assert config["components"]["tagger"]["factory"] == "tagger"
    assert "@factories" not in config["components"]["tagger"] and "name" not in config["components"]["tagger"]
    assert config["corpora"]["train"]["limit"] == 0
    assert config["training"]["batcher"]["get_length"] is None
    assert config["training"]["batcher"]["size"]["t"] == 0.0
    assert config["nlp"]["batch_size"] == 1000


def test_load_config_fills_optimizer_defaults():
    # tagger_multitask.cfg gives only learn_rate, L2, grad_clip, use_averages.
    raw = Config().from_disk(MULTITASK_CFG, interpolate=False)
    assert "beta1" not in raw["training"]["optimizer"]
    optimizer = load_config(MULTITASK_CFG)["training"]["optimizer"]
    assert optimizer["beta1"] == 0.9
    assert optimizer["beta2"] == 0.999
    assert optimizer["eps"] == 1e-08
    assert optimizer["L2_is_weight_decay"] is True
    assert optimizer["learn_rate"] == 0.001
    assert optimizer["L2"] == 0.01
    assert load_config(MULTITASK_CFG)["training"]["patience"] == 0


def test_load_config_keeps_references():
    config = load_config(MULTITASK_CFG, {"paths.train": "/somewhere/else.conllu"})
    assert config["training"]["seed"] == "${system.seed}"
    assert config["corpora"]["train"]["path"] == "${paths.train}"
    assert config["components"]["tagger"]["model"]["tok2vec"]["width"] == "${components.tok2vec.model.width}"
    text = config.to_str()
    assert "seed = ${system.seed}" in text and "path = ${paths.train}" in text
    C = config.interpolate()
    assert C["training"]["seed"] == 0
    assert C["corpora"]["train"]["path"] == "/somewhere/else.conllu"
    assert C["components"]["xpos_tagger"]["model"]["tok2vec"]["width"] == 96


def test_load_config_overrides_and_round_trip(tmp_path):
    config = load_config(TAGGER_CFG, {"training.max_epochs": 2, "components.tagger.model.tok2vec.width": 64})
    assert config["training"]["max_epochs"] == 2
    assert config["components"]["tagger"]["model"]["tok2vec"]["width"] == 64
    path = tmp_path / "filled.cfg"
    config.to_disk(path)
    again = load_config(path)
    assert again == config
    assert fill_config(again) == config  # filling is idempotent


def test_load_config_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.cfg"):
        load_config(tmp_path / "nope.cfg")


# ------------------------------------------------------------------ errors name the key


def bad_config(tmp_path, old, new, source=TAGGER_CFG):
    text = source.read_text(encoding="utf8")
    assert text.count(old) == 1, f"{old!r} must occur once in {source.name}"
    path = tmp_path / "bad.cfg"
    path.write_text(text.replace(old, new), encoding="utf8")
    return path


def test_misspelled_architecture_argument(tmp_path):
    path = bad_config(tmp_path, "width = 96", "widht = 96")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "tok2vec.widht" in message and "unexpected argument" in message
    assert "tok2vec.width" in message and "missing required argument" in message


def test_misspelled_architecture_argument_names_the_full_key(tmp_path):
    path = bad_config(tmp_path, "width = 96", "widht = 96")
    with pytest.raises(ConfigError, match=re.escape("components.tagger.model.tok2vec.widht")):
        load_config(path)


def test_wrong_argument_type(tmp_path):
    path = bad_config(tmp_path, "depth = 4", 'depth = "four"')
    with pytest.raises(ConfigError, match=r"tok2vec\.depth.*'four'"):
        load_config(path)


def test_unknown_training_setting(tmp_path):
    path = bad_config(tmp_path, "patience = 0", "patiense = 0")
    with pytest.raises(ConfigError, match=r"^training\.patiense: unknown setting; expected one of: .*patience"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^--training\.max_step: no such setting in .*tagger.cfg \(\[training\] has: .*max_steps"):
        load_config(TAGGER_CFG, {"training.max_step": 3})


def test_unknown_nlp_setting():
    with pytest.raises(ConfigError, match=r"^--nlp\.batchsize: no such setting in .*tagger.cfg \(\[nlp\] has: batch_size"):
        load_config(TAGGER_CFG, {"nlp.batchsize": 3})


def test_unknown_factory(tmp_path):
    path = bad_config(tmp_path, 'factory = "tagger"', 'factory = "taggr"')
    with pytest.raises(ConfigError, match=r"^components\.tagger\.factory: unknown factory 'taggr'; expected one of: .*tagger"):
        load_config(path)


def test_missing_factory(tmp_path):
    path = bad_config(tmp_path, 'factory = "tagger"\n', "")
    with pytest.raises(ConfigError, match=r"^components\.tagger\.factory: missing"):
        load_config(path)


def test_pipeline_names_a_missing_component(tmp_path):
    path = bad_config(tmp_path, 'pipeline = ["tagger"]', 'pipeline = ["tagger", "parser"]')
    with pytest.raises(ConfigError, match=r"^nlp\.pipeline: 'parser' has no \[components\.parser\] block"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^nlp\.pipeline: expected a list"):
        load_config(TAGGER_CFG, {"nlp.pipeline": []})


def test_missing_training_block(tmp_path):
    text = TAGGER_CFG.read_text(encoding="utf8")
    start = text.index("[training.optimizer]")
    end = text.index("[training.score_weights]")
    path = tmp_path / "bad.cfg"
    path.write_text(text[:start] + text[end:], encoding="utf8")
    with pytest.raises(ConfigError, match=r"^training\.optimizer: missing block"):
        load_config(path)


def test_override_of_a_missing_section():
    with pytest.raises(ConfigError) as info:
        load_config(TAGGER_CFG, {"nosuch.key": 3})
    assert "nosuch" in str(info.value) and str(TAGGER_CFG) in str(info.value)


def test_unknown_architecture(tmp_path):
    path = bad_config(tmp_path, '"spacy.HashEmbedCNN.v1"', '"spacy.HashEmbedCNN.v9"')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "spacy.HashEmbedCNN.v9" in str(info.value)
    assert "components.tagger.model.tok2vec" in str(info.value)
