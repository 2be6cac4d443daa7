"""spaCy training configs (what `spacy init config` writes) read as archsweep configs.

A spaCy config is recognised by what only spaCy's have: `[nlp]` settings such as
`lang` or `tokenizer`, or an `[initialize]` / `[pretraining]` section. Its `[nlp]`,
`[components]`, `[corpora]` and `[training]` blocks map onto archsweep's:

* components: tok2vec, tagger (it learns `tag_`, or `pos_` when the score weights
  weigh pos_acc and not tag_acc), parser, ner, textcat and textcat_multilabel;
  any other factory is an error naming `components.NAME.factory`;
* model blocks keep their registered names; the newer versions `spacy init config`
  writes become the same networks under the versions archsweep has:
  spacy.HashEmbedCNN.v2 -> v1, spacy.Tok2Vec.v2 (MultiHashEmbed.v2 + MaxoutWindowEncoder.v2) -> spacy.HashEmbedCNN.v1
  where it is that network (its row layout), kept as it is otherwise,
  spacy.Tagger.v2 -> v1, spacy.TransitionBasedParser.v2 -> v1 (nr_feature_tokens from
  state_type), spacy.TextCatBOW.v2/v3 -> v1;
* corpora: spacy.Corpus.v1 reads the .spacy files (search/corpora/docbin.py);
* training: seed, dropout, max_epochs, max_steps, eval_frequency, patience, the
  corpora, optimizer, batcher and score weights.

Settings that would change what spaCy does but that archsweep does not use are
collected (dotted keys) for one warning; settings left at values that change
nothing (null, empty, spaCy's defaults) are dropped silently. No spaCy import here.
"""

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from confection import Config

from archs.features import ATTRS

from .config import ConfigError, apply_overrides, check_override_keys, fill_config, has_setting

logger = logging.getLogger(__name__)

# [nlp] settings only spaCy's configs have
SPACY_NLP_KEYS = ("lang", "tokenizer", "vectors", "disabled", "before_creation", "after_creation", "after_pipeline_creation")
SPACY_SECTIONS = ("initialize", "pretraining")
TRAINING_KEPT = ("seed", "dropout", "max_epochs", "max_steps", "max_seconds", "eval_frequency", "patience",
                 "train_corpus", "dev_corpus", "optimizer", "batcher")
# spaCy settings whose value here changes nothing in archsweep's training (spaCy's defaults)
INERT: Dict[str, Any] = {
    "training.accumulate_gradient": 1,
    "training.logger": {"@loggers": "spacy.ConsoleLogger.v1", "progress_bar": False},
    "nlp.tokenizer": {"@tokenizers": "spacy.Tokenizer.v1"},
    "nlp.vectors": {"@vectors": "spacy.Vectors.v1"},
    "overwrite": False,
    "neg_prefix": "!",
    "label_smoothing": 0.0,
    "learn_tokens": False,
    "max_length": 0,
}
# spaCy's own scorers: archsweep's components score the same way
DEFAULT_SCORERS = ("spacy.tagger_scorer.v1", "spacy.parser_scorer.v1", "spacy.ner_scorer.v1",
                   "spacy.textcat_scorer.v1", "spacy.textcat_scorer.v2",
                   "spacy.textcat_multilabel_scorer.v1", "spacy.textcat_multilabel_scorer.v2")
# per factory: the settings archsweep's component takes, as they are in spaCy's block
COMPONENT_SETTINGS: Dict[str, Tuple[str, ...]] = {
    "tok2vec": (),
    "tagger": (),
    "parser": ("min_action_freq", "update_with_oracle_cut_size"),
    "ner": ("update_with_oracle_cut_size",),
    "textcat": (),
    "textcat_multilabel": ("threshold",),
}
NOT_MAPPED = {
    "entity_linker": "spaCy's entity linker needs its knowledge base (an InMemoryLookupKB), which archsweep "
    "cannot read; use archsweep's entity-linker config (configs/entity_linker.cfg) and its `archsweep kb build`",
}
# spaCy's TransitionBasedParser.v2: the state tokens of each state_type (without, with extra_state_tokens)
STATE_TOKENS = {"parser": (8, 13), "ner": (3, 6)}
BOW_LENGTH = 2**18  # archsweep's TextCatBOW.v1 table, spaCy's v3 default `length`


@dataclass
class Converted:
    """An archsweep config made from a spaCy config, and the spaCy settings it leaves out."""

    config: Config
    ignored: List[str] = field(default_factory=list)

    def warning(self) -> Optional[str]:
        if not self.ignored:
            return None
        return "warning: spaCy settings archsweep does not use, ignored: " + ", ".join(self.ignored)


def is_spacy_config(config: Dict[str, Any]) -> bool:
    """Whether a config is spaCy's (rather than archsweep's own)."""
    nlp = config.get("nlp") or {}
    return any(key in nlp for key in SPACY_NLP_KEYS) or any(section in config for section in SPACY_SECTIONS)


def from_spacy_config(config: Config) -> Converted:
    """Map an (uninterpolated) spaCy config onto archsweep's settings."""
    source = Config(config).copy()
    try:  # whether a setting changes anything is judged on its value, not on a ${reference}
        values = Config(config).interpolate()
    except Exception as err:  # a ${reference} to a setting that does not exist
        raise ConfigError(f"config: {err}") from err
    ignored: List[str] = []
    result = Config()
    result["paths"] = dict(source.get("paths") or {})
    result["system"] = {k: v for k, v in (source.get("system") or {}).items() if k in ("seed", "gpu_allocator")}
    _note_rest(values.get("system") or {}, result["system"], "system", ignored)
    nlp = source.get("nlp") or {}
    result["nlp"] = {"pipeline": list(nlp.get("pipeline") or []), "batch_size": nlp.get("batch_size", 1000)}
    _note_rest(values.get("nlp") or {}, result["nlp"], "nlp", ignored)
    for section in SPACY_SECTIONS:
        _note_rest(values.get(section) or {}, {}, section, ignored)
    corpora = source.get("corpora") or {}
    result["corpora"] = {name: _corpus(name, block, values["corpora"][name], ignored) for name, block in corpora.items()}
    training = source.get("training") or {}
    weights = {k: v for k, v in (training.get("score_weights") or {}).items() if v}  # null and 0 weigh nothing
    if "cats_score" in weights:  # spaCy's textcat score: macro F (exclusive classes) or macro AUC
        factories = {(block or {}).get("factory") for block in (source.get("components") or {}).values()}
        cats_score = "cats_macro_auc" if "textcat_multilabel" in factories else "cats_macro_f"
        weights = {cats_score if k == "cats_score" else k: v for k, v in weights.items()}
    result["training"] = {k: copy.deepcopy(training[k]) for k in TRAINING_KEPT if k in training}
    if weights:
        result["training"]["score_weights"] = weights
    _note_rest(values.get("training") or {}, result["training"], "training", ignored, also_used=("score_weights",))
    batcher = result["training"].get("batcher")
    if isinstance(batcher, dict) and batcher.get("get_length", 0) is None:
        del batcher["get_length"]
    renamed: Dict[str, str] = {}
    components = source.get("components") or {}
    result["components"] = {}
    for name in result["nlp"]["pipeline"]:
        if name not in components:
            continue  # fill_config names the missing block
        result["components"][name] = _component(name, components[name], values["components"][name], weights, ignored, renamed)
    for name in components:
        if name not in result["components"]:
            ignored.append(f"components.{name}")
    # through text: the ${references} are then the config's own again, as when read from a file
    converted = Config().from_str(Config(_replace_references(dict(result), renamed)).to_str(), interpolate=False)
    return Converted(converted, ignored)


def _component(name: str, block: Dict[str, Any], resolved: Dict[str, Any], weights: Dict[str, Any],
                ignored: List[str], renamed: Dict[str, str]) -> Dict[str, Any]:
    where = f"components.{name}"
    if "factory" not in block:
        if "source" in block:
            raise ConfigError(f"{where}.source: components sourced from a trained spaCy pipeline are not supported; "
                              "expected a factory block")
        raise ConfigError(f"{where}.factory: missing (e.g. \"tagger\" or \"tok2vec\")")
    factory = block["factory"]
    if factory in NOT_MAPPED:
        raise ConfigError(f"{where}.factory: {factory!r}: {NOT_MAPPED[factory]}")
    if factory not in COMPONENT_SETTINGS:
        raise ConfigError(
            f"{where}.factory: archsweep has no {factory!r} component; expected one of: {', '.join(COMPONENT_SETTINGS)}"
        )
    result: Dict[str, Any] = {"factory": factory}
    for key in COMPONENT_SETTINGS[factory]:
        if key in block:
            result[key] = block[key]
    if factory == "tagger":
        result["label_attr"] = "upos" if weights.get("pos_acc") and not weights.get("tag_acc") else "xpos"
    if factory == "ner":
        result["label_order"] = "spacy"  # entity labels by frequency, as spaCy orders them
    if "model" not in block:
        raise ConfigError(f"{where}.model: missing block [{where}.model]")
    result["model"] = _model(block["model"], f"{where}.model", factory, ignored, renamed)
    scorer = block.get("scorer")
    used = ("factory", "model", *COMPONENT_SETTINGS[factory])
    for key, value in resolved.items():
        if key in used or (key == "scorer" and isinstance(scorer, dict) and scorer.get("@scorers") in DEFAULT_SCORERS):
            continue
        # an exclusive textcat predicts the highest-scoring class whatever its threshold
        if not _inert(key, value) and not (factory == "textcat" and key == "threshold"):
            ignored.append(f"{where}.{key}")
    return result


def _model(block: Any, where: str, factory: str, ignored: List[str], renamed: Dict[str, str]) -> Any:
    """A model block with spaCy's newer architecture versions as the ones archsweep has."""
    if not isinstance(block, dict):
        return block
    block = {k: _model(v, f"{where}.{k}", factory, ignored, renamed) for k, v in block.items()}
    name = block.get("@architectures")
    if name == "spacy.Tok2Vec.v2":
        return _tok2vec_v2(block, where, renamed)
    if name == "spacy.HashEmbedCNN.v2":  # spaCy's v2 is its v1 (kept in spacy-legacy) unchanged
        return {**block, "@architectures": "spacy.HashEmbedCNN.v1"}
    if name == "spacy.Tagger.v2":
        if block.pop("normalize", False):
            ignored.append(f"{where}.normalize")
        return {**block, "@architectures": "spacy.Tagger.v1"}
    if name == "spacy.TransitionBasedParser.v2":
        state_type = block.pop("state_type", factory)
        if state_type not in STATE_TOKENS:
            raise ConfigError(f"{where}.state_type: expected \"parser\" or \"ner\", got {state_type!r}")
        extra = bool(block.pop("extra_state_tokens", False))
        return {**block, "@architectures": "spacy.TransitionBasedParser.v1",
                "nr_feature_tokens": STATE_TOKENS[state_type][extra]}
    if name in ("spacy.TextCatBOW.v2", "spacy.TextCatBOW.v3"):
        length = block.pop("length", BOW_LENGTH)
        if length != BOW_LENGTH:
            ignored.append(f"{where}.length")
        return {**block, "@architectures": "spacy.TextCatBOW.v1"}
    return block


def _tok2vec_v2(block: Dict[str, Any], where: str, renamed: Dict[str, str]) -> Dict[str, Any]:
    """spacy.Tok2Vec.v2 of MultiHashEmbed.v2 and MaxoutWindowEncoder.v2: as spacy.HashEmbedCNN.v1
    where it is that network (NORM, PREFIX, SUFFIX, SHAPE with the subword tables at half the
    NORM table's rows, or NORM alone), so that sweeps and exports see HashEmbedCNN's
    parameters; otherwise kept as it is (archsweep has the three architectures too)."""
    embed, encode = block.get("embed") or {}, block.get("encode") or {}
    if embed.get("@architectures") != "spacy.MultiHashEmbed.v2":
        raise ConfigError(f"{where}.embed: expected spacy.MultiHashEmbed.v2, got {embed.get('@architectures')!r}")
    if encode.get("@architectures") != "spacy.MaxoutWindowEncoder.v2":
        raise ConfigError(f"{where}.encode: expected spacy.MaxoutWindowEncoder.v2, got {encode.get('@architectures')!r}")
    if embed.get("include_static_vectors"):
        raise ConfigError(f"{where}.embed.include_static_vectors: static vectors from a spaCy vectors package are not "
                          "supported; expected false (archsweep's spacy.HashEmbedCNN.v1 takes pretrained_vectors = a GloVe or word2vec file)")
    for key in ("width", "depth", "window_size", "maxout_pieces"):
        if key not in encode:
            raise ConfigError(f"{where}.encode.{key}: missing")
    attrs = [str(a).upper() for a in embed.get("attrs", [])]
    rows = list(embed.get("rows", []))
    unknown = [a for a in attrs if a not in ATTRS]
    if not attrs or unknown:
        raise ConfigError(f"{where}.embed.attrs: expected token attributes of {', '.join(ATTRS)}, got {embed.get('attrs')}")
    if len(rows) != len(attrs):
        raise ConfigError(f"{where}.embed.rows: expected one row count per attribute ({len(attrs)}), got {rows}")
    embed_size = rows[0]  # attrs is not empty, and rows has one count per attribute
    hash_embed_cnn = attrs == ["NORM"] or (
        attrs == ["NORM", "PREFIX", "SUFFIX", "SHAPE"] and isinstance(embed_size, int) and rows[1:] == [embed_size // 2] * 3
    )
    if not hash_embed_cnn:
        return block
    renamed[f"{where}.encode.width"] = f"{where}.width"
    renamed[f"{where}.embed.width"] = f"{where}.width"
    return {
        "@architectures": "spacy.HashEmbedCNN.v1",
        "width": encode["width"],
        "depth": encode["depth"],
        "embed_size": embed_size,
        "window_size": encode["window_size"],
        "maxout_pieces": encode["maxout_pieces"],
        "subword_features": len(attrs) > 1,
        "pretrained_vectors": None,
    }


def _corpus(name: str, block: Any, resolved: Any, ignored: List[str]) -> Any:
    if not isinstance(block, dict) or block.get("@readers") != "spacy.Corpus.v1":
        return block  # another reader: fill_config checks it is one archsweep has
    kept = {k: block[k] for k in ("@readers", "path", "gold_preproc", "max_length", "limit") if k in block}
    for key, value in resolved.items():
        if key not in kept and value is not None:
            ignored.append(f"corpora.{name}.{key}")
    return kept


def _note_rest(block: Dict[str, Any], kept: Dict[str, Any], where: str, ignored: List[str],
               also_used: Tuple[str, ...] = ()) -> None:
    for key, value in block.items():
        dotted = f"{where}.{key}"
        if key in kept or key in also_used:
            continue
        if isinstance(value, dict) and not any(k.startswith("@") for k in value) and value:
            _note_rest(value, {}, dotted, ignored)
        elif not _inert(dotted, value):
            ignored.append(dotted)


def _inert(key: str, value: Any) -> bool:
    if value is None or value == [] or value == {}:
        return True
    default = INERT.get(key, INERT.get(key.rpartition(".")[2], _MISSING))
    return default is not _MISSING and value == default


_MISSING = object()


def _replace_references(node: Any, renamed: Dict[str, str]) -> Any:
    """${...} references to blocks that moved (a listener's width = ${components.tok2vec.model.encode.width})."""
    if isinstance(node, dict):
        return {k: _replace_references(v, renamed) for k, v in node.items()}
    if isinstance(node, str) and "${" in node:
        for old, new in renamed.items():
            node = node.replace("${" + old + "}", "${" + new + "}")
    return node


def load_spacy_config(config: Config, overrides: Dict[str, Any], source: str) -> Config:
    """A spaCy config with dotted overrides (spaCy's keys) applied, mapped, filled and
    checked as load_config does; the settings left out are logged in one warning."""
    if overrides:
        unknown = {key: value for key, value in overrides.items() if not has_setting(config, key)}
        if unknown:
            check_override_keys(config, unknown, source=source)
        config = apply_overrides(config, overrides)
    converted = from_spacy_config(config)
    warning = converted.warning()
    if warning:
        logger.warning(warning)
    return fill_config(converted.config)
