"""Search spaces: a training config in which some values are distributions.

A value becomes a dimension when its place holds a block naming a registered
distribution:

    [components.tagger.model.tok2vec.width]
    @distributions = "ordinal.v1"
    values = [64, 96, 128, 256]

`options.v1` chooses between whole sub-blocks; distributions inside the chosen
block exist only when it is chosen (conditional dimensions):

    [components.tagger.model.tok2vec]
    @distributions = "options.v1"
    [components.tagger.model.tok2vec.cnn]
    @architectures = "spacy.HashEmbedCNN.v1"
    ...
    [components.tagger.model.tok2vec.chars]
    @architectures = "spacy.HashCharEmbedCNN.v1"
    ...

Sampling asks a *suggester* for each value; an Optuna trial is one (it has
suggest_float / suggest_int / suggest_categorical), `RandomSuggester` and
`DefaultSuggester` are others. The result is an ordinary training config.
This module imports neither Ray nor Optuna nor MLflow.
"""

import hashlib
import inspect
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union

from confection import Config

from archs import registry

from .training.config import NLP_DEFAULTS, TRAINING_BLOCKS, TRAINING_DEFAULTS, ConfigError, check_override_keys, fill_config, has_setting

DIST_KEY = "@distributions"


class _NoDefault:
    """Marks a categorical without a given default (null is a valid choice)."""

    def __repr__(self) -> str:
        return "no default"


NO_DEFAULT: Any = _NoDefault()
Primitive = Union[None, bool, int, float, str]


class SpaceError(ConfigError):
    """A problem with a search space; the message names the dotted key."""


class Suggester(Protocol):
    def suggest_float(self, name: str, low: float, high: float, *, step: Optional[float] = None, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive: ...


class Distribution:
    """A searched value: how to ask a suggester for it, its range and default."""

    default: Any
    # Values tried right after the defaults trial, each in a trial of its own with every other
    # dimension at its default (a known large gain the random start-up trials may miss).
    enqueue: List[Any]

    def suggest(self, suggester: Suggester, name: str) -> Any:
        raise NotImplementedError

    def takes(self, value: Any) -> bool:
        """Whether a trial can be given `value` (a value in range, on the step)."""
        raise NotImplementedError

    def _check_enqueue(self) -> None:
        if not isinstance(self.enqueue, list):
            raise ValueError(f"enqueue must be a list of values, got {self.enqueue!r}")
        for value in self.enqueue:
            if not self.takes(value):
                raise ValueError(f"enqueue value {_show_json(value)} is not a value of this distribution ({self.describe()})")

    def describe(self) -> str:
        raise NotImplementedError


def _check_range(low: float, high: float, log: bool) -> None:
    if not low < high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log-uniform range needs low > 0, got {low}")


def _middle(low: float, high: float, log: bool) -> float:
    """The default of a range without one: its (geometric, for log) middle."""
    return math.sqrt(low * high) if log else (low + high) / 2


def _check_default(default: Any, low: float, high: float) -> None:
    if not low <= default <= high:
        raise ValueError(f"default {default} is outside [{low}, {high}]")


@dataclass
class Uniform(Distribution):
    low: float
    high: float
    log: bool = False
    step: Optional[float] = None
    default: Any = None
    enqueue: List[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if self.default is None:
            mid = _middle(self.low, self.high, self.log)
            if self.step:
                mid = self.low + round((mid - self.low) / self.step) * self.step
            self.default = mid
        _check_default(self.default, self.low, self.high)
        self._check_enqueue()

    def suggest(self, suggester: Suggester, name: str) -> float:
        return suggester.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def takes(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        return not self.step or on_grid(value, self.low, self.step)

    def describe(self) -> str:
        kind = "log-uniform" if self.log else "uniform"
        return f"{kind} [{self.low:g}, {self.high:g}]" + (f" step {self.step:g}" if self.step else "")


@dataclass
class IntUniform(Distribution):
    low: int
    high: int
    log: bool = False
    step: int = 1
    default: Any = None
    enqueue: List[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)
        if self.step < 1:
            raise ValueError(f"step must be a positive integer, got {self.step}")
        if self.log and self.step != 1:
            raise ValueError("a log-uniform integer range cannot have a step")
        if self.default is None:
            self.default = self.low + int(round((_middle(self.low, self.high, self.log) - self.low) / self.step)) * self.step
        _check_default(self.default, self.low, self.high)
        self._check_enqueue()

    def suggest(self, suggester: Suggester, name: str) -> int:
        return suggester.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def takes(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high \
            and (value - self.low) % self.step == 0

    def describe(self) -> str:
        kind = "int log-uniform" if self.log else "int uniform"
        return f"{kind} [{self.low}, {self.high}]" + (f" step {self.step}" if self.step != 1 else "")


@dataclass
class Categorical(Distribution):
    values: List[Primitive]
    default: Any = NO_DEFAULT
    enqueue: List[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("needs at least one value")
        for value in self.values:
            if not isinstance(value, (type(None), bool, int, float, str)):
                raise ValueError(f"values must be numbers, strings, booleans or null, got {value!r}")
        if self.default is NO_DEFAULT:
            self.default = self.values[0]
        elif self.default not in self.values:
            raise ValueError(f"default {self.default!r} is not one of {self.values}")
        self._check_enqueue()

    def suggest(self, suggester: Suggester, name: str) -> Primitive:
        return suggester.suggest_categorical(name, self.values)

    def takes(self, value: Any) -> bool:
        # by type too: true is not 1
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        return "choice of " + ", ".join(map(show_value, self.values))


@dataclass
class Ordinal(Categorical):
    """Ordered steps (e.g. widths 64/96/128/256), suggested as an index so the
    sampler can exploit the order."""

    def suggest(self, suggester: Suggester, name: str) -> Primitive:
        if len(self.values) == 1:
            return self.values[0]
        return self.values[suggester.suggest_int(name, 0, len(self.values) - 1)]

    def describe(self) -> str:
        return "ordinal " + " < ".join(map(show_value, self.values))


@dataclass
class Options(Distribution):
    """A choice between named sub-blocks; their own distributions are conditional."""

    blocks: Dict[str, Dict[str, Any]]
    default: Any = None
    enqueue: List[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError("needs at least one option block")
        for name, block in self.blocks.items():
            if not isinstance(block, dict):
                raise ValueError(f"option {name!r} must be a block ([...{name}]), got {block!r}")
        if self.default is None:
            self.default = next(iter(self.blocks))
        elif self.default not in self.blocks:
            raise ValueError(f"default {self.default!r} is not one of the options {list(self.blocks)}")
        self._check_enqueue()

    def suggest(self, suggester: Suggester, name: str) -> str:
        return str(suggester.suggest_categorical(name, list(self.blocks)))

    def takes(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.blocks

    def describe(self) -> str:
        return "options " + ", ".join(self.blocks)


def show_value(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@registry.distributions("choice.v1")
def choice(values: List[Primitive], default: Primitive = NO_DEFAULT, enqueue: List[Primitive] = []) -> Distribution:
    """One of `values` (numbers, strings, booleans or null), unordered. Each value
    in `enqueue` is tried right after the defaults, the other dimensions at theirs."""
    return Categorical(list(values), default, enqueue)


@registry.distributions("ordinal.v1")
def ordinal(values: List[Primitive], default: Primitive = NO_DEFAULT, enqueue: List[Primitive] = []) -> Distribution:
    """One of `values`, whose order matters (quantized steps such as 64/96/128/256)."""
    return Ordinal(list(values), default, enqueue)


@registry.distributions("uniform.v1")
def uniform(
    low: float, high: float, step: Optional[float] = None, default: Optional[float] = None, enqueue: List[float] = []
) -> Distribution:
    """A float in [low, high]; `step` quantizes it (low, low+step, ...)."""
    return Uniform(float(low), float(high), False, step, default, enqueue)


@registry.distributions("loguniform.v1")
def loguniform(low: float, high: float, default: Optional[float] = None, enqueue: List[float] = []) -> Distribution:
    """A float in [low, high], uniform in log space (learning rates)."""
    return Uniform(float(low), float(high), True, None, default, enqueue)


@registry.distributions("int_uniform.v1")
def int_uniform(low: int, high: int, step: int = 1, default: Optional[int] = None, enqueue: List[int] = []) -> Distribution:
    """An integer in [low, high] in steps of `step`."""
    return IntUniform(int(low), int(high), False, int(step), default, enqueue)


@registry.distributions("int_loguniform.v1")
def int_loguniform(low: int, high: int, default: Optional[int] = None, enqueue: List[int] = []) -> Distribution:
    """An integer in [low, high], uniform in log space (table sizes)."""
    return IntUniform(int(low), int(high), True, 1, default, enqueue)


@registry.distributions("options.v1")
def options(default: Optional[str] = None, enqueue: List[str] = [], **blocks: Dict[str, Any]) -> Distribution:
    """One of the named sub-blocks that follow (e.g. two architectures)."""
    return Options(dict(blocks), default, enqueue)


@dataclass
class Dimension:
    name: str  # dotted path in the space file
    distribution: Distribution
    condition: Optional[Tuple[str, str]] = None  # (options dimension, option) it exists under

    def describe(self) -> str:
        return self.distribution.describe()


class RandomSuggester:
    """Uniform random sampling with a seeded RNG (no Optuna needed)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def suggest_float(self, name: str, low: float, high: float, *, step: Optional[float] = None, log: bool = False) -> float:
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return round(low + self.rng.randint(0, int(round((high - low) / step))) * step, 12)
        return self.rng.uniform(low, high)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if log:
            return int(round(math.exp(self.rng.uniform(math.log(low), math.log(high)))))
        return low + self.rng.randint(0, (high - low) // step) * step

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive:
        return choices[self.rng.randrange(len(choices))]


class DefaultSuggester:
    """Every dimension at its default; `overrides` picks given options instead."""

    def __init__(self, space: "Space", overrides: Dict[str, Any] = {}) -> None:
        self.defaults = {d.name: d.distribution for d in space.dimensions}
        self.overrides = overrides

    def _pick(self, name: str) -> Any:
        return self.overrides.get(name, self.defaults[name].default)

    def suggest_float(self, name: str, low: float, high: float, *, step: Optional[float] = None, log: bool = False) -> float:
        return self._pick(name)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        dist = self.defaults[name]
        if isinstance(dist, Ordinal):
            return dist.values.index(self._pick(name))
        return self._pick(name)

    def suggest_categorical(self, name: str, choices: Sequence[Primitive]) -> Primitive:
        return self._pick(name)


class Space:
    """A parsed search space: the config template and its dimensions."""

    def __init__(self, template: Config, source: str = "") -> None:
        self.template = template
        self.source = source
        self.dimensions: List[Dimension] = []
        self._collect(template, "", None)
        if not self.dimensions:
            raise SpaceError(f"{source or 'space'}: no distributions found (a block with `{DIST_KEY} = ...`)")

    @classmethod
    def from_disk(cls, path: Union[str, Path], overrides: Dict[str, Any] = {}) -> "Space":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"search space not found: {path}")
        try:
            config = Config().from_disk(path, interpolate=False)
        except Exception as err:
            raise SpaceError(f"{path}: {err}") from err
        if not overrides:
            return cls(config, source=str(path))
        # an override names a setting of the space itself (a distribution's field) or of
        # the config it samples (defaults filled in); a typo is refused, not ignored
        unknown = {k: v for k, v in overrides.items() if not has_setting(config, k)}
        if unknown:
            space = cls(config, source=str(path))
            defaults, _ = space.sample(DefaultSuggester(space))
            check_override_keys(fill_config(defaults), unknown, source=str(path))
        try:
            config = Config().from_disk(path, interpolate=False, overrides=dict(overrides))
        except Exception as err:
            raise SpaceError(f"{path}: {err}") from err
        return cls(config, source=str(path))

    @property
    def text(self) -> str:
        return self.template.to_str()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf8")).hexdigest()[:16]

    def _collect(self, node: Dict[str, Any], path: str, condition: Optional[Tuple[str, str]]) -> None:
        for key, value in node.items():
            if not isinstance(value, dict):
                continue
            dotted = f"{path}.{key}" if path else key
            if DIST_KEY in value:
                dist = make_distribution(dotted, value)
                self.dimensions.append(Dimension(dotted, dist, condition))
                if isinstance(dist, Options):
                    for option, block in dist.blocks.items():
                        self._collect(block, f"{dotted}.{option}", (dotted, option))
            else:
                self._collect(value, dotted, condition)

    def sample(self, suggester: Suggester) -> Tuple[Config, Dict[str, Any]]:
        """Fill every distribution the suggester's way: the training config and
        the sampled value of each dimension that exists in it."""
        values: Dict[str, Any] = {}
        filled = _fill(self.template, "", suggester, values)
        # the template's ${references} (a listener's width = a searched tok2vec width) stay references
        return Config(filled, is_interpolated=self.template.is_interpolated), values

    def enqueued(self) -> List[Dict[str, Any]]:
        """The picks of the trials a sweep runs right after the defaults, in the
        space's order: for each value in a dimension's `enqueue`, that dimension
        at that value (and the options it exists under chosen), the rest at their
        defaults."""
        by_name = {d.name: d for d in self.dimensions}
        return [{**_activation(dim, by_name), dim.name: value} for dim in self.dimensions for value in dim.distribution.enqueue]

    def enqueued_labels(self) -> List[str]:
        """What each enqueued trial tries, "DIMENSION = VALUE", in the order they run."""
        return [f"{dim.name} = {show_value(value)}" for dim in self.dimensions for value in dim.distribution.enqueue]

    def validate(self) -> None:
        """Check the space before any trial starts: every dimension's target,
        the filled config of each option (each options dimension once per
        option, the rest at defaults), and every value a trial can be given
        (each choice and ordinal value, both ends of each range), each
        substituted alone into the default config and filled as a training
        config would be. Builds no model and reads no corpus."""
        for dim in self.dimensions:
            _check_target(self.template, dim.name)
        by_name = {d.name: d for d in self.dimensions}
        keys = {d.name: _config_key(d, by_name) for d in self.dimensions}
        options = [d for d in self.dimensions if isinstance(d.distribution, Options)]
        variants: List[Dict[str, Any]] = [{d.name: d.distribution.default for d in options if d.condition is None}]
        for dim in options:
            distribution = dim.distribution
            if not isinstance(distribution, Options):  # options holds only Options dimensions
                raise AssertionError(f"{dim.name}: expected an options dimension, got {distribution!r}")
            variants += [
                {**_activation(dim, by_name), dim.name: option}
                for option in distribution.blocks
                if option != distribution.default
            ]
        for variant in variants:
            values, error = self._try_fill(variant)
            if error is None:
                continue
            # An error at a dimension's key is that dimension's default value: name the dimension.
            for name, value in values.items():
                dist = by_name[name].distribution
                if not isinstance(dist, Options) and error.startswith(keys[name] + ":"):
                    what = "default" if isinstance(dist, (Uniform, IntUniform)) else _value_kind(dist)
                    raise SpaceError(f"{name}: {what} {_show_json(value)} is invalid:{error[len(keys[name]) + 1:]}")
            where = f" (with {', '.join(f'{k} = {v}' for k, v in variant.items())})" if variant else ""
            raise SpaceError(f"{self.source or 'space'}{where}: {error}")
        # The defaults fill (checked above), so a value that does not is the one to blame.
        # A fill costs tens of milliseconds: values of several dimensions go into one fill
        # (one value per dimension, under options picks that agree), and only a fill that
        # fails is redone value by value to name the culprit.
        pending = [(dim, what, value) for dim in self.dimensions for what, value in _candidates(dim.distribution)]
        while pending:
            batch, later = [], []
            picks: Dict[str, Any] = {}
            for candidate in pending:
                dim = candidate[0]
                activation = _activation(dim, by_name)
                if dim.name in picks or any(picks.get(k, v) != v for k, v in activation.items()):
                    later.append(candidate)
                    continue
                picks.update({**activation, dim.name: candidate[2]})
                batch.append(candidate)
            pending = later
            if len(batch) > 1 and self._try_fill(picks)[1] is None:
                continue
            for dim, what, value in batch:
                _, error = self._try_fill({**_activation(dim, by_name), dim.name: value})
                if error is not None:
                    if error.startswith(keys[dim.name] + ":"):
                        error = error[len(keys[dim.name]) + 1:].lstrip()
                    raise SpaceError(f"{dim.name}: {what} {_show_json(value)} is invalid: {error}")

    def _try_fill(self, picks: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
        """The config sampled at `picks` (the rest at defaults) filled as a
        training config: the sampled value of each dimension in it, and its
        problem in one line (None when it fills)."""
        config, values = self.sample(DefaultSuggester(self, picks))  # fresh: fill_config may change what it is given
        try:
            fill_config(config)
        except ConfigError as err:
            return values, _one_line(str(err))
        return values, None


def _activation(dim: Dimension, by_name: Dict[str, Dimension]) -> Dict[str, Any]:
    """The options picks under which a conditional dimension exists (its
    options dimension's option, and that one's own condition, upwards)."""
    picks: Dict[str, Any] = {}
    condition = dim.condition
    while condition is not None:
        parent, option = condition
        picks[parent] = option
        condition = by_name[parent].condition
    return picks


def _config_key(dim: Dimension, by_name: Dict[str, Dimension]) -> str:
    """Where a dimension's value lands in a sampled config: its dotted name
    without the option names (`tok2vec.chars.width` is `tok2vec.width`)."""
    if dim.condition is None:
        return dim.name
    parent, option = dim.condition
    rest = dim.name[len(parent) + len(option) + 2:]
    return f"{_config_key(by_name[parent], by_name)}.{rest}"


def on_grid(value: float, low: float, step: float) -> bool:
    """Whether `value` is low + k * step for a whole k (within float rounding)."""
    steps = (value - low) / step
    return abs(steps - round(steps)) < 1e-6


def _value_kind(dist: Distribution) -> str:
    return "ordinal value" if isinstance(dist, Ordinal) else "choice value"


def _candidates(dist: Distribution) -> List[Tuple[str, Any]]:
    """The values of a distribution worth checking, each with how to name it:
    every choice and ordinal value, both ends of a range. An options
    dimension has none: its blocks are checked as variants."""
    if isinstance(dist, Categorical):
        return [(_value_kind(dist), v) for v in dist.values]
    if isinstance(dist, (Uniform, IntUniform)):
        return [("range's low end", dist.low), ("range's high end", dist.high)] + [("enqueue value", v) for v in dist.enqueue]
    return []


def _show_json(value: Any) -> str:
    """A value as a config file spells it (null, true, "abc", 0.2)."""
    return json.dumps(value)


def _one_line(message: str) -> str:
    """fill_config reports several problems as an indented list under
    "config error:"; an error line holds them joined."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if lines and lines[0] == "config error:":
        lines = lines[1:]
    return "; ".join(lines)


def make_distribution(dotted: str, block: Dict[str, Any]) -> Distribution:
    name = block[DIST_KEY]
    try:
        factory = registry.distributions.get(name)
    except Exception:
        known = ", ".join(sorted(registry.distributions.get_all()))
        raise SpaceError(f"{dotted}: unknown distribution {name!r}; expected one of: {known}") from None
    args = {k: v for k, v in block.items() if k != DIST_KEY}
    try:
        inspect.signature(factory).bind(**args)
        return factory(**args)
    except (TypeError, ValueError) as err:
        raise SpaceError(f"{dotted} ({name}): {err}") from None


def _fill(node: Dict[str, Any], path: str, suggester: Suggester, values: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in node.items():
        dotted = f"{path}.{key}" if path else key
        if isinstance(value, dict) and DIST_KEY in value:
            dist = make_distribution(dotted, value)
            picked = dist.suggest(suggester, dotted)
            values[dotted] = picked
            out[key] = _fill(dist.blocks[picked], dotted + "." + picked, suggester, values) if isinstance(dist, Options) else picked
        elif isinstance(value, dict):
            out[key] = _fill(value, dotted, suggester, values)
        else:
            out[key] = value
    return out


def _check_target(template: Config, dotted: str) -> None:
    """The key a distribution replaces must be a parameter of the function (or
    setting of the section) it sits in."""
    parts = dotted.split(".")
    parent: Dict[str, Any] = template
    for part in parts[:-1]:
        parent = parent[part]  # an option's block takes its options block's place
    parent_path = parts[:-1]
    key = parts[-1]
    function = _function_of(parent, parent_path, dotted)
    if function is None:
        return
    params = inspect.signature(function).parameters
    if key in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    where = ".".join(parent_path)
    raise SpaceError(
        f"{dotted}: {key!r} is not a parameter of {where} ({_name_of(parent)}); expected one of: {', '.join(params)}"
    )


def _function_of(block: Dict[str, Any], path: List[str], dotted: str):
    for key, value in block.items():
        if key.startswith("@"):
            reg_name = key[1:]
            if not hasattr(registry, reg_name):
                raise SpaceError(f"{dotted}: unknown registry @{reg_name} in {'.'.join(path)}")
            try:
                return getattr(registry, reg_name).get(value)
            except Exception:
                raise SpaceError(f"{dotted}: {'.'.join(path)} names an unknown {reg_name} {value!r}") from None
    if len(path) == 2 and path[0] == "components" and "factory" in block:
        return registry.factories.get(block["factory"])
    if path == ["training"]:
        return _settings_signature(list(TRAINING_DEFAULTS) + list(TRAINING_BLOCKS))
    if path == ["nlp"]:
        return _settings_signature(list(NLP_DEFAULTS))
    return None  # free-form sections: [paths], [system]


def _settings_signature(names: List[str]):
    def settings(**kwargs):  # stands for a section's fixed set of settings
        pass

    settings.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
    )
    return settings


def _name_of(block: Dict[str, Any]) -> str:
    for key, value in block.items():
        if key.startswith("@"):
            return f"{key} = {value!r}"
    return f"factory = {block['factory']!r}" if "factory" in block else "section"
