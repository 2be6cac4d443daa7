"""The archsweep registry: spaCy's `@architectures` names resolved from confection configs."""

import catalogue
import pytest
from confection import Config, ConfigValidationError
from thinc.api import Model

import archs
from archs import make_docs, registry
from archs.tok2vec import HashEmbedCNN

EXPECTED_ARCHITECTURES = {
    "spacy.HashEmbedCNN.v1",
    "spacy.HashCharEmbedCNN.v1",
    "spacy.HashCharEmbedBiLSTM.v1",
    "spacy.Tagger.v1",
    "spacy.Tok2VecListener.v1",
}

T2V_BLOCK = """
@architectures = "spacy.HashEmbedCNN.v1"
width = 32
depth = 2
embed_size = 500
window_size = 1
maxout_pieces = 3
subword_features = true
"""

TAGGER_CONFIG = """
[model]
@architectures = "spacy.Tagger.v1"
nO = 17

[model.tok2vec]""" + T2V_BLOCK


def test_get_returns_the_builder():
    assert registry is archs.registry
    builder = registry.architectures.get("spacy.HashEmbedCNN.v1")
    assert builder is HashEmbedCNN
    model = builder(width=32, depth=1, embed_size=100, window_size=1, maxout_pieces=2, subword_features=False)
    assert isinstance(model, Model) and model.get_dim("nO") == 32


def test_the_spec_architectures_are_registered():
    assert EXPECTED_ARCHITECTURES <= set(registry.architectures.get_all())
    for name in EXPECTED_ARCHITECTURES:
        assert name in registry.architectures


def test_resolve_tagger_with_nested_tok2vec():
    resolved = registry.resolve(Config().from_str(TAGGER_CONFIG))
    model = resolved["model"]
    assert isinstance(model, Model)
    tok2vec = model.get_ref("tok2vec")
    assert tok2vec.get_dim("nO") == 32
    assert [n.attrs["seed"] for n in tok2vec.walk() if n.name == "hashembed"] == [8, 9, 10, 11]
    assert model.get_ref("output_layer").get_dim("nO") == 17
    assert model.get_ref("output_layer").get_dim("nI") == 32
    docs = make_docs([["A", "short", "one", "."], ["Two", "words"]])
    model.initialize(X=docs)
    assert [y.shape for y in model.predict(docs)] == [(4, 17), (2, 17)]


def test_thinc_sections_resolve_beside_architectures():
    """The registry extends Thinc's: @layers and @optimizers work in the same config."""
    config = TAGGER_CONFIG + """
[optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.001

[extra]
@layers = "archsweep.FixedDropout.v1"
rate = 0.1
"""
    resolved = registry.resolve(Config().from_str(config))
    assert isinstance(resolved["model"], Model)
    assert resolved["optimizer"].learn_rate == 0.001
    assert resolved["extra"].attrs["fixed_dropout_rate"] == 0.1


def test_misspelled_parameter_is_a_validation_error():
    config = "[model]" + T2V_BLOCK.replace("width = 32", "widht = 32")
    with pytest.raises(ConfigValidationError) as excinfo:
        registry.resolve(Config().from_str(config))
    message = str(excinfo.value)
    assert "widht" in message
    assert "unexpected argument" in message
    assert "spacy.HashEmbedCNN.v1" in message


def test_misspelled_parameter_in_nested_block_names_the_path():
    config = TAGGER_CONFIG.replace("window_size = 1", "windowsize = 1")
    with pytest.raises(ConfigValidationError) as excinfo:
        registry.resolve(Config().from_str(config))
    message = str(excinfo.value)
    assert "windowsize" in message
    assert "tok2vec" in message


def test_wrong_type_is_a_validation_error():
    config = "[model]" + T2V_BLOCK.replace("width = 32", 'width = "wide"')
    with pytest.raises(ConfigValidationError, match="width"):
        registry.resolve(Config().from_str(config))


def test_unknown_architecture_is_named():
    config = "[model]" + T2V_BLOCK.replace("spacy.HashEmbedCNN.v1", "spacy.HashEmbedCNN.v9")
    with pytest.raises(catalogue.RegistryError, match=r"spacy\.HashEmbedCNN\.v9") as excinfo:
        registry.resolve(Config().from_str(config))
    # the message lists what is available
    assert "spacy.HashEmbedCNN.v1" in str(excinfo.value)
    with pytest.raises(catalogue.RegistryError, match=r"spacy\.Nope\.v1"):
        registry.architectures.get("spacy.Nope.v1")
