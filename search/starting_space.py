"""A starting search space for a training config (archsweep's or spaCy's): the config
with its architecture parameters, learning rate, batch size and dropout made
distributions over spaCy's documented ranges, each defaulting to the config's value.

`archsweep space --from CONFIG` writes it; edit it, then `archsweep sweep` it.
"""

from typing import Any, Dict, List, Tuple

from confection import Config

from .space import DIST_KEY

# per architecture: (parameter, distribution block) over spaCy's documented ranges
Ranges = List[Tuple[str, Dict[str, Any]]]
ARCHITECTURE_RANGES: Dict[str, Ranges] = {}
_TOK2VEC: Ranges = [
    ("width", {DIST_KEY: "ordinal.v1", "values": [64, 96, 128, 256]}),
    ("depth", {DIST_KEY: "int_uniform.v1", "low": 2, "high": 8}),
    ("embed_size", {DIST_KEY: "int_loguniform.v1", "low": 2000, "high": 10000}),
    ("window_size", {DIST_KEY: "int_uniform.v1", "low": 1, "high": 2}),
    ("maxout_pieces", {DIST_KEY: "int_uniform.v1", "low": 2, "high": 3}),
]
ARCHITECTURE_RANGES["spacy.HashEmbedCNN.v1"] = _TOK2VEC
ARCHITECTURE_RANGES["spacy.HashCharEmbedCNN.v1"] = _TOK2VEC
# spaCy's Tok2Vec.v2: the encoder holds the width (the embedding refers to it), depth and window
ARCHITECTURE_RANGES["spacy.MaxoutWindowEncoder.v2"] = [(key, d) for key, d in _TOK2VEC if key != "embed_size"]
ARCHITECTURE_RANGES["spacy.TransitionBasedParser.v1"] = [
    ("hidden_width", {DIST_KEY: "ordinal.v1", "values": [32, 64, 128, 256]}),
    ("maxout_pieces", {DIST_KEY: "int_uniform.v1", "low": 1, "high": 4}),
]
ARCHITECTURE_RANGES["spacy.TextCatBOW.v1"] = [("ngram_size", {DIST_KEY: "int_uniform.v1", "low": 1, "high": 3})]
ARCHITECTURE_RANGES["spacy.TextCatEnsemble.v1"] = [("ngram_size", {DIST_KEY: "int_uniform.v1", "low": 1, "high": 3})]

LEARN_RATE = {DIST_KEY: "loguniform.v1", "low": 1e-4, "high": 1e-2}
DROPOUT = {DIST_KEY: "uniform.v1", "low": 0.0, "high": 0.3, "step": 0.05}
BATCH_START = {DIST_KEY: "ordinal.v1", "values": [100, 250, 500]}
BATCH_STOP = {DIST_KEY: "ordinal.v1", "values": [500, 1000, 2000]}
BATCH_SIZE = {DIST_KEY: "ordinal.v1", "values": [500, 1000, 2000, 3000]}

HEADER = """\
# A starting search space, written by `archsweep space --from {source}`.
# Architecture parameters, learning rate, batch size and dropout are searched over
# spaCy's documented ranges; every default is the config's own value.
# Edit it, check it with `archsweep space FILE`, run it with `archsweep sweep FILE`.
"""


def starting_space(config: Config, source: str) -> str:
    """The text of a search space over `config` (an uninterpolated, filled training config)."""
    space = Config(config).copy()
    for block in _architecture_blocks(space.get("components") or {}):
        for key, distribution in ARCHITECTURE_RANGES.get(block.get("@architectures", ""), []):
            if isinstance(block.get(key), (int, float)) and not isinstance(block[key], bool):
                block[key] = _around(distribution, block[key])
    training = space["training"]
    optimizer = training.get("optimizer") or {}
    if isinstance(optimizer.get("learn_rate"), (int, float)):
        optimizer["learn_rate"] = _around(LEARN_RATE, optimizer["learn_rate"])
    if isinstance(training.get("dropout"), (int, float)):
        training["dropout"] = _around(DROPOUT, training["dropout"])
    size = (training.get("batcher") or {}).get("size")
    if isinstance(size, int):
        training["batcher"]["size"] = _around(BATCH_SIZE, size)
    elif isinstance(size, dict) and size.get("@schedules") == "compounding.v1":
        for key, distribution in (("start", BATCH_START), ("stop", BATCH_STOP)):
            if isinstance(size.get(key), int):
                size[key] = _around(distribution, size[key])
    return HEADER.format(source=source) + space.to_str()


def _architecture_blocks(node: Dict[str, Any]) -> List[Dict[str, Any]]:
    blocks = [node] if "@architectures" in node else []
    for value in node.values():
        if isinstance(value, dict):
            blocks += _architecture_blocks(value)
    return blocks


def _around(distribution: Dict[str, Any], value: Any) -> Dict[str, Any]:
    """The distribution with the config's value as its default (the range or the
    values widened to hold it)."""
    block = dict(distribution, default=value)
    if "values" in block:
        if value not in block["values"]:
            block["values"] = sorted([*block["values"], value])
    else:
        block["low"] = min(block["low"], value)
        block["high"] = max(block["high"], value)
        if "step" in block and round((value - block["low"]) / block["step"], 9) % 1:
            del block["step"]  # a default off the grid: search the range without one
    return block
