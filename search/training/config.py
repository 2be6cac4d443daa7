"""Training configs: loading with overrides, defaults made explicit, checks that name the key."""

import itertools
import json
import operator
import typing
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

from annotated_types import Ge, Gt, Le, Lt
from confection import Config, ConfigValidationError
from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt, StrictStr, ValidationError, confloat

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
# blocks whose keys are the user's own (score names), so an override may add one
FREE_FORM_BLOCKS = ("training.score_weights",)
# the steps of a batch size schedule checked when a config is loaded
SCHEDULE_CHECK_STEPS = 10_000


class ConfigError(ValueError):
    """A config problem; the message names the dotted key and what was expected."""


class TrainingSettings(BaseModel):
    """Types and ranges of the [training] settings (the blocks are checked by their registries)."""

    model_config = ConfigDict(extra="allow")

    seed: int
    dropout: confloat(ge=0.0, lt=1.0)  # type: ignore[valid-type]
    max_epochs: NonNegativeInt
    max_steps: NonNegativeInt
    max_seconds: confloat(ge=0.0)  # type: ignore[valid-type]
    eval_frequency: PositiveInt
    patience: NonNegativeInt
    train_corpus: StrictStr
    dev_corpus: StrictStr
    score_weights: Optional[Dict[str, Optional[float]]] = None


class NlpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: List[StrictStr]
    batch_size: PositiveInt


class SystemSettings(BaseModel):
    model_config = ConfigDict(extra="allow")

    seed: Optional[int] = None
    gpu_allocator: Optional[Literal["pytorch", "tensorflow"]] = None


SECTION_SCHEMAS: Dict[str, type[BaseModel]] = {"training": TrainingSettings, "nlp": NlpSettings, "system": SystemSettings}


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
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a config file (.cfg)")
    try:
        config = Config().from_disk(path, interpolate=False)
    except Exception as err:
        raise ConfigError(f"{path}: {err}") from err
    if "@distributions" in config.to_str():
        raise ConfigError(f"{path} is a search space (it has @distributions): sweep it with `archsweep sweep {path}`")
    from .spacy_config import is_spacy_config, load_spacy_config  # it builds on this module

    if is_spacy_config(config):
        return load_spacy_config(config, overrides, str(path))
    if overrides:
        # a key the file has is known; only the others need the defaults filled in to be found
        unknown = {key: value for key, value in overrides.items() if not has_setting(config, key)}
        if unknown:
            check_override_keys(fill_config(config), unknown, source=str(path))
        config = apply_overrides(config, overrides)
    return fill_config(config)


def has_setting(config: Dict[str, Any], dotted: str) -> bool:
    """Whether a config has the setting (or block) a dotted key names."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def check_override_keys(config: Config, overrides: Dict[str, Any], source: str = "the config") -> None:
    """Refuse an override whose dotted key is not a setting of the (filled) config:
    a typo such as --paths.trian would otherwise be silently ignored. Blocks whose keys
    the user names (training.score_weights) take new keys."""
    for dotted in overrides:
        if any(dotted.startswith(block + ".") for block in FREE_FORM_BLOCKS):
            continue
        node: Any = config
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:depth])
                known = sorted(k for k in node if not k.startswith("@")) if isinstance(node, dict) else []
                inside = f"[{where}] has: {', '.join(known)}" if where else f"sections: {', '.join(known)}"
                raise ConfigError(f"--{dotted}: no such setting in {source} ({inside})")
            node = node[part]


def fill_config(config: Config) -> Config:
    """Make every default explicit (training settings, component and
    architecture arguments) and check the structure; returns a new,
    uninterpolated config."""
    config = Config(config).copy()  # a deep copy: the caller's nested blocks stay as they were
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
    for required in ("optimizer", "batcher"):
        if required not in training:
            raise ConfigError(f"training.{required}: missing block [training.{required}]")
    if not nlp["pipeline"]:
        raise ConfigError("nlp.pipeline: expected a list of component names, got an empty list")
    for name in nlp["pipeline"]:
        if name not in config["components"]:
            raise ConfigError(f"nlp.pipeline: {name!r} has no [components.{name}] block")
    _check_registered(config, "")
    work = Config(config)
    for name in nlp["pipeline"]:
        block = dict(work["components"][name])
        factory = factory_of(name, block)
        block.pop("factory")
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
    try:
        resolved = filled.interpolate()
    except Exception as err:  # a ${reference} to a setting that does not exist
        raise ConfigError(f"config: {err}") from err
    _check_sections(resolved)
    _check_ranges(resolved, "")
    _check_batch_size_schedule(resolved)
    return filled


def _check_sections(config: Dict[str, Any]) -> None:
    """[training], [nlp] and [system] against their schemas; [paths] values are paths or null."""
    for section, schema in SECTION_SCHEMAS.items():
        try:
            schema.model_validate(dict(config.get(section) or {}))
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join([section, *(str(part) for part in first["loc"])])
            raise ConfigError(f"{key}: {_expected(first['msg'])}, got {first.get('input')!r}") from None
    learn_rate = ((config.get("training") or {}).get("optimizer") or {}).get("learn_rate")
    if isinstance(learn_rate, (int, float)) and not isinstance(learn_rate, bool) and not learn_rate > 0:
        raise ConfigError(f"training.optimizer.learn_rate: expected a number > 0, got {learn_rate!r}")
    for key, value in (config.get("paths") or {}).items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"paths.{key}: expected a path (a string) or null, got {value!r}")


def _check_batch_size_schedule(config: Dict[str, Any]) -> None:
    """A batch size schedule (e.g. compounding.v1) gives sizes of at least 1 over its
    first SCHEDULE_CHECK_STEPS steps."""
    size = (config.get("training") or {}).get("batcher", {}).get("size")
    if not isinstance(size, dict):
        return
    try:
        schedule = registry.resolve({"size": size})["size"]
        first = list(itertools.islice(iter(schedule), SCHEDULE_CHECK_STEPS))
    except Exception as err:  # a schedule that cannot be built: its own error, under the key
        raise ConfigError(f"training.batcher.size: {err}") from err
    for step, value in enumerate(first):
        if not isinstance(value, (int, float)) or value < 1:
            raise ConfigError(
                f"training.batcher.size: expected batch sizes of at least 1 word, the schedule gives {value!r} at step {step}"
            )


def _expected(message: str) -> str:
    """pydantic's "Input should be ..." as "expected ..."."""
    for prefix in ("Input should be ", "Value error, "):
        if message.startswith(prefix):
            return "expected " + message[len(prefix):]
    return message


def _check_ranges(node: Dict[str, Any], path: str) -> None:
    """Every argument of a registered function (an `@architectures = ...` block, a
    component's factory) whose annotation carries bounds (archs.types.PositiveInt,
    DropoutRate, ...) is within them; the message names the dotted key."""
    function = _registered_function(node)
    hints = typing.get_type_hints(function, include_extras=True) if function is not None else {}
    for key, value in node.items():
        dotted = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            _check_ranges(value, dotted)
        elif key in hints and isinstance(value, (int, float)) and not isinstance(value, bool):
            for bound in _bounds(hints[key]):
                if not _within(value, bound):
                    raise ConfigError(f"{dotted}: expected {_describe_bounds(hints[key])}, got {value!r}")


def _registered_function(node: Dict[str, Any]) -> Any:
    if isinstance(node.get("factory"), str):
        return registry.factories.get_all().get(node["factory"])
    for key, value in node.items():
        if key.startswith("@") and key != "@distributions" and isinstance(value, str) and hasattr(registry, key[1:]):
            return getattr(registry, key[1:]).get_all().get(value)
    return None


def _bounds(hint: Any) -> List[Any]:
    """The annotated_types bounds of an annotation (inside Optional[...] too)."""
    if typing.get_origin(hint) is Union:
        return [b for arg in typing.get_args(hint) for b in _bounds(arg)]
    if typing.get_origin(hint) is typing.Annotated:
        return [m for m in hint.__metadata__ if isinstance(m, (Gt, Ge, Lt, Le))]
    return []


def _within(value: float, bound: Any) -> bool:
    # operator.gt(a, b) is a > b; annotated_types types the bounds as SupportsGt etc.,
    # which mypy does not take on the right of a float's comparison
    if isinstance(bound, Gt):
        return operator.gt(value, bound.gt)
    if isinstance(bound, Ge):
        return operator.ge(value, bound.ge)
    if isinstance(bound, Lt):
        return operator.lt(value, bound.lt)
    return operator.le(value, bound.le)


def _describe_bounds(hint: Any) -> str:
    parts = []
    for bound in _bounds(hint):
        symbol, limit = {Gt: (">", "gt"), Ge: (">=", "ge"), Lt: ("<", "lt"), Le: ("<=", "le")}[type(bound)]
        parts.append(f"{symbol} {getattr(bound, limit)}")
    kind = "an integer" if int in _base_types(hint) else "a number"
    return f"{kind} {' and '.join(parts)}"


def _base_types(hint: Any) -> List[Any]:
    if typing.get_origin(hint) is Union:
        return [t for arg in typing.get_args(hint) for t in _base_types(arg)]
    if typing.get_origin(hint) is typing.Annotated:
        return [typing.get_args(hint)[0]]
    return [hint]


def factory_of(name: str, block: Dict[str, Any]) -> str:
    """The registered factory a [components.NAME] block names; ConfigError when it names none."""
    factory = block.get("factory")
    if factory is None:
        raise ConfigError(f"components.{name}.factory: missing (e.g. \"tagger\" or \"tok2vec\")")
    if factory not in registry.factories.get_all():
        known = ", ".join(sorted(registry.factories.get_all()))
        raise ConfigError(f"components.{name}.factory: unknown factory {factory!r}; expected one of: {known}")
    return str(factory)


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
                registered = sorted(getattr(registry, reg_name).get_all())
                kind = reg_name[:-1] if reg_name.endswith("s") else reg_name
                family = str(value).rpartition(".v")[0]
                versions = [name for name in registered if family and name.rpartition(".v")[0] == family]
                if versions:  # the same function under another version: a config from another release
                    raise ConfigError(
                        f"{dotted}: unknown {kind} version {value!r}; this archsweep has {', '.join(versions)} "
                        "(was the config written for another version?)"
                    )
                raise ConfigError(f"{dotted}: unknown {kind} {value!r}; expected one of: {', '.join(registered)}")


def _check_keys(section: str, values: Dict[str, Any], allowed: Dict[str, Any]) -> None:
    for key in values:
        if key not in allowed:
            raise ConfigError(f"{section}.{key}: unknown setting; expected one of: {', '.join(sorted(allowed))}")
