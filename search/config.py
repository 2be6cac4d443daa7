"""Training configs: loading with overrides, defaults made explicit, checks that name the key."""

import json
from pathlib import Path
from typing import Any, Dict, List, Union

from confection import Config, ConfigValidationError

from archs import registry

# The [training] settings a config may give, with their defaults (spaCy's names).
TRAINING_DEFAULTS: Dict[str, Any] = {
    "seed": 0,
    "dropout": 0.1,
    "max_epochs": 0,
    "max_steps": 0,
    "max_seconds": 0,
    "eval_frequency": 200,
    "patience": 0,
    "train_corpus": "corpora.train",
    "dev_corpus": "corpora.dev",
}
TRAINING_BLOCKS = ("optimizer", "batcher", "score_weights")
NLP_DEFAULTS: Dict[str, Any] = {"pipeline": [], "batch_size": 1000}


class ConfigError(ValueError):
    """A config problem; the message names the dotted key and what was expected."""


def parse_overrides(args: List[str]) -> Dict[str, Any]:
    """spaCy-style `--section.key value` (or `--section.key=value`) pairs.

    Values are read as JSON where they parse (numbers, true/false/null, lists,
    quoted strings), otherwise taken as plain strings.
    """
    overrides: Dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or "." not in arg:
            raise ConfigError(f"unexpected argument {arg!r}: overrides look like --section.key value")
        key = arg[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"override --{key} needs a value")
            raw = args[i + 1]
            i += 2
        overrides[key.replace("-", "_")] = _parse_value(raw)
    return overrides


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def apply_overrides(config: Config, overrides: Dict[str, Any]) -> Config:
    """A copy of `config` with dotted-key overrides applied (references kept)."""
    if not overrides:
        return Config(config)
    try:
        return Config().from_str(Config(config).to_str(), overrides=dict(overrides), interpolate=False)
    except Exception as err:
        raise ConfigError(f"overrides: {err}") from err


def load_config(path: Union[str, Path], overrides: Dict[str, Any] = {}) -> Config:
    """Read a config file, apply dotted overrides, interpolate, and check it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        config = Config().from_disk(path, overrides=dict(overrides), interpolate=False)
    except Exception as err:  # confection reports missing sections/keys for overrides
        raise ConfigError(f"{path}: {err}") from err
    return fill_config(config)


def fill_config(config: Config) -> Config:
    """Make every default explicit (training settings, component and
    architecture arguments) and check the structure; returns a new,
    uninterpolated config."""
    config = Config(config)
    for section in ("paths", "system", "corpora", "components"):
        config.setdefault(section, {})
    nlp = config.setdefault("nlp", {})
    for key, value in NLP_DEFAULTS.items():
        nlp.setdefault(key, value)
    _check_keys("nlp", nlp, NLP_DEFAULTS)
    training = config.setdefault("training", {})
    for key, value in TRAINING_DEFAULTS.items():
        training.setdefault(key, value)
    _check_keys("training", training, {**TRAINING_DEFAULTS, **{b: None for b in TRAINING_BLOCKS}})
    for block in ("optimizer", "batcher"):
        if block not in training:
            raise ConfigError(f"training.{block}: missing block [training.{block}]")
    if not nlp["pipeline"]:
        raise ConfigError("nlp.pipeline: expected a list of component names, got an empty list")
    for name in nlp["pipeline"]:
        if name not in config["components"]:
            raise ConfigError(f"nlp.pipeline: {name!r} has no [components.{name}] block")
    _check_registered(config, "")
    work = Config(config)
    for name in nlp["pipeline"]:
        block = dict(work["components"][name])
        factory = block.pop("factory", None)
        if factory is None:
            raise ConfigError(f"components.{name}.factory: missing (e.g. \"tagger\" or \"tok2vec\")")
        if factory not in registry.factories.get_all():
            known = ", ".join(sorted(registry.factories.get_all()))
            raise ConfigError(f"components.{name}.factory: unknown factory {factory!r}; expected one of: {known}")
        work["components"][name] = {"@factories": factory, "name": name, **block}
    try:
        filled = registry.fill(work, validate=True)
    except ConfigValidationError as err:
        raise ConfigError(_describe(err, work)) from err
    except Exception as err:  # unknown registered names, bad references
        raise ConfigError(str(err)) from err
    for name in nlp["pipeline"]:
        block = dict(filled["components"][name])
        factory = block.pop("@factories")
        block.pop("name")
        filled["components"][name] = {"factory": factory, **block}
    return filled


def _describe(err: ConfigValidationError, config: Dict[str, Any]) -> str:
    """One line per problem: the dotted key (from the config's top) and what was expected."""
    lines = []
    for error in err.errors or []:
        loc = [part for p in error.get("loc", []) for part in str(p).split(".")]
        lines.append(f"{'.'.join(_full_path(config, loc))}: {error.get('msg')}")
    return "config error:\n  " + "\n  ".join(lines) if lines else str(err)


def _full_path(config: Dict[str, Any], loc: List[str]) -> List[str]:
    """confection reports locations below the top-level section; find that section."""
    if not loc or loc[0] in config:
        return loc
    for section, block in config.items():
        node: Any = block
        for part in loc[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return [section] + loc
    return loc


def _check_registered(node: Dict[str, Any], path: str) -> None:
    """Every `@registry = "name"` must name a registered function (confection's
    fill skips unknown ones and they would only fail when built)."""
    for key, value in node.items():
        dotted = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            _check_registered(value, dotted)
        elif key.startswith("@") and key != "@distributions":
            reg_name = key[1:]
            if not hasattr(registry, reg_name):
                raise ConfigError(f"{path}: unknown registry {key!r}")
            if value not in getattr(registry, reg_name).get_all():
                known = ", ".join(sorted(getattr(registry, reg_name).get_all()))
                raise ConfigError(f"{dotted}: unknown {reg_name[:-1] if reg_name.endswith('s') else reg_name} {value!r}; expected one of: {known}")


def _check_keys(section: str, values: Dict[str, Any], allowed: Dict[str, Any]) -> None:
    for key in values:
        if key not in allowed:
            raise ConfigError(f"{section}.{key}: unknown setting; expected one of: {', '.join(sorted(allowed))}")
