"""Every value a search space can give a trial is checked before any trial
starts (search/space.py `Space.validate`): each choice and ordinal value, both
ends of each range, each option's block. One table of bad spaces, run through
the Python API (SpaceError) and through `archsweep space FILE` (exit code 1,
one `error:` line, no traceback)."""

from pathlib import Path
from typing import List, NamedTuple

import pytest
from confection import Config
from search_testing import run_cli
from sweep_fixtures import SPACE

from search.space import Space, SpaceError

T2V = "components.tagger.model.tok2vec"


class BadSpace(NamedTuple):
    """spaces/tagger.cfg with the block at `replaced` swapped for `sections`
    (config text); validating it must fail with an error that starts with
    `key` and contains `message`."""

    replaced: str
    sections: str
    key: str
    message: str


def _choice(key: str, values: str) -> str:
    return f'[{key}]\n@distributions = "choice.v1"\nvalues = {values}\n'


def _ordinal(key: str, values: str) -> str:
    return f'[{key}]\n@distributions = "ordinal.v1"\nvalues = {values}\n'


def _range(key: str, distribution: str, low: str, high: str) -> str:
    return f'[{key}]\n@distributions = "{distribution}"\nlow = {low}\nhigh = {high}\n'


def _cnn_or_chars(cnn_width: str, chars_width: str) -> str:
    """The tagger's tok2vec as a choice between two architectures."""
    return f"""
[{T2V}]
@distributions = "options.v1"
default = "cnn"

[{T2V}.cnn]
@architectures = "spacy.HashEmbedCNN.v1"
depth = 2
embed_size = 1000
window_size = 1
maxout_pieces = 3
subword_features = true
pretrained_vectors = null

{cnn_width}

[{T2V}.chars]
@architectures = "spacy.HashCharEmbedCNN.v1"
depth = 2
embed_size = 1000
window_size = 1
maxout_pieces = 3
nM = 8
nC = 4
pretrained_vectors = null

{chars_width}
"""


BAD_SPACES: List = [
    pytest.param(
        BadSpace("training.dropout", _choice("training.dropout", '[null, "abc", 0.2]'),
                 "training.dropout", "choice value null is invalid: expected a valid number"),
        id="choice-null-dropout",  # null is the default: the all-defaults config names it
    ),
    pytest.param(
        BadSpace("training.dropout", _choice("training.dropout", '[0.1, "abc", 0.2]'),
                 "training.dropout", 'choice value "abc" is invalid'),
        id="choice-string-dropout",
    ),
    pytest.param(
        BadSpace(f"{T2V}.subword_features", _choice(f"{T2V}.subword_features", '[true, "maybe"]'),
                 f"{T2V}.subword_features", 'choice value "maybe" is invalid'),
        id="choice-string-for-bool",
    ),
    pytest.param(
        BadSpace(f"{T2V}.width", _ordinal(f"{T2V}.width", "[64, 96, -64]"),
                 f"{T2V}.width", "ordinal value -64 is invalid: expected an integer > 0"),
        id="ordinal-negative-width",
    ),
    pytest.param(
        BadSpace(f"{T2V}.width", _ordinal(f"{T2V}.width", '[64, "wide"]'),
                 f"{T2V}.width", 'ordinal value "wide" is invalid'),
        id="ordinal-string-width",
    ),
    pytest.param(
        BadSpace(f"{T2V}.depth", _range(f"{T2V}.depth", "int_uniform.v1", "0", "4"),
                 f"{T2V}.depth", "range's low end 0 is invalid: expected an integer > 0"),
        id="int-range-low-end",
    ),
    pytest.param(
        BadSpace("training.dropout", _range("training.dropout", "uniform.v1", "0.0", "1.0"),
                 "training.dropout", "range's high end 1.0 is invalid: expected less than 1"),
        id="uniform-range-high-end",
    ),
    pytest.param(
        BadSpace("training.dropout", _range("training.dropout", "uniform.v1", "0.5", "1.5"),
                 "training.dropout", "default 1.0 is invalid: expected less than 1"),
        id="uniform-range-default",  # the middle of the range, used by the all-defaults config
    ),
    pytest.param(
        BadSpace("training.dropout", _range("training.dropout", "uniform.v1", "0.3", "0.1"),
                 "training.dropout (uniform.v1)", "low (0.3) must be below high (0.1)"),
        id="uniform-low-above-high",
    ),
    pytest.param(
        BadSpace("training.optimizer.learn_rate", _range("training.optimizer.learn_rate", "loguniform.v1", "0", "0.01"),
                 "training.optimizer.learn_rate (loguniform.v1)", "a log-uniform range needs low > 0, got 0.0"),
        id="loguniform-low-zero",
    ),
    pytest.param(
        BadSpace(T2V, _cnn_or_chars(_ordinal(f"{T2V}.cnn.width", "[32, -8]"), "width = 32"),
                 f"{T2V}.cnn.width", "ordinal value -8 is invalid: expected an integer > 0"),
        id="ordinal-in-an-option",
    ),
    pytest.param(
        BadSpace(T2V, _cnn_or_chars("width = 32", _range(f"{T2V}.chars.width", "int_uniform.v1", "-16", "32")),
                 f"{T2V}.chars.width", "range's low end -16 is invalid"),
        id="range-in-the-other-option",
    ),
    pytest.param(
        BadSpace(T2V, _cnn_or_chars("width = 32", "width = -32"),
                 f"bad.cfg (with {T2V} = chars): {T2V}.width", "expected an integer > 0, got -32"),
        id="fixed-value-in-an-option",
    ),
]


def _write(bad: BadSpace, directory: Path) -> Path:
    config = Config().from_disk(SPACE, interpolate=False)
    *parents, last = bad.replaced.split(".")
    node = config
    for part in parents:
        node = node[part]
    del node[last]
    path = directory / "bad.cfg"
    path.write_text(config.to_str() + "\n" + bad.sections)
    return path


def _expected_key(bad: BadSpace, path: Path) -> str:
    """The error's start: errors outside any one dimension name the space file as given."""
    return bad.key.replace("bad.cfg", str(path))


@pytest.mark.parametrize("bad", BAD_SPACES)
def test_a_bad_value_is_named_by_its_key_through_the_api(bad: BadSpace, tmp_path):
    path = _write(bad, tmp_path)
    with pytest.raises(SpaceError) as err:
        Space.from_disk(path).validate()
    message = str(err.value)
    assert message.startswith(_expected_key(bad, path)), message
    assert bad.message in message
    assert "\n" not in message


@pytest.mark.parametrize("bad", BAD_SPACES)
def test_a_bad_value_is_one_error_line_from_the_cli(bad: BadSpace, tmp_path):
    path = _write(bad, tmp_path)
    proc = run_cli("space", str(path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {_expected_key(bad, path)}"), lines[0]
    assert bad.message in lines[0]


def test_every_value_of_the_shipped_spaces_is_valid():
    for path in sorted((SPACE.parent).glob("*.cfg")):
        Space.from_disk(path).validate()
