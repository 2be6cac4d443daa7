"""Search algorithms (Optuna samplers) and trial schedulers (Ray Tune's), chosen by
name from the registry: `archsweep sweep --search NAME --scheduler NAME`. A new one
is a registered function here (or in any module imported before the sweep starts)."""

import warnings
from typing import Any, Dict, List, Optional

import optuna
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from archs import registry

from ..space import Space
from .outcome import ASHA_TIME_ATTRS, TrialOutcome
from .seeding import DEFAULTS_KEY, ENQUEUED_KEY, WarmStart, enqueued_label, is_defaults_trial, start_points
from .settings import METRIC, SweepSettings
from .trial import SEED_KEY, derive_seed
from .tune_compat import PruningAwareOptunaSearch


class DefineByRun:
    """Optuna define-by-run space: samples the archsweep space through the
    trial and adds the trial's seed (derived from the sweep seed). With
    defaults_first, the study's first trial is the space's defaults (enqueued),
    marked with DEFAULTS_KEY, and the next ones the space's enqueued values,
    marked with ENQUEUED_KEY."""

    # what a searcher pickled before these existed resumes with
    defaults_first = False
    enqueued: List[str] = []

    def __init__(self, space: Space, sweep_seed: int, defaults_first: bool = False) -> None:
        self.space = space
        self.sweep_seed = sweep_seed
        self.defaults_first = defaults_first
        self.enqueued = space.enqueued_labels()

    def __call__(self, trial: optuna.Trial) -> Dict[str, Any]:
        self.space.sample(trial)
        extra: Dict[str, Any] = {SEED_KEY: derive_seed(self.sweep_seed, trial.number)}
        if is_defaults_trial(trial, self.defaults_first):
            extra[DEFAULTS_KEY] = True
        label = enqueued_label(trial, self.defaults_first, self.enqueued)
        if label is not None:
            extra[ENQUEUED_KEY] = label
        return extra


def searcher(space: Space, settings: SweepSettings, warm: Optional[WarmStart] = None) -> OptunaSearch:
    """The Optuna searcher of --search: the defaults enqueued first, then the
    space's enqueued values (neither with --no-defaults-first), and an earlier
    sweep's finished trials (warm) added as trials the sampler has already seen."""
    samplers = registry.samplers.get_all()
    if settings.search not in samplers:
        raise ValueError(f"--search: expected one of {', '.join(sorted(samplers))}, got {settings.search!r}")
    sampler = samplers[settings.search](seed=settings.seed)
    search = PruningAwareOptunaSearch(
        space=DefineByRun(space, settings.seed, settings.defaults_first), metric=METRIC, mode="max", sampler=sampler,
        points_to_evaluate=start_points(space) if settings.defaults_first else None, outcome=TrialOutcome.of(settings),
    )
    if warm is not None:
        search.add_finished_trials(warm.trials)
    return search


def scheduler(settings: SweepSettings) -> TrialScheduler:
    schedulers = registry.schedulers.get_all()
    if settings.scheduler not in schedulers:
        raise ValueError(f"--scheduler: expected one of {', '.join(sorted(schedulers))}, got {settings.scheduler!r}")
    return schedulers[settings.scheduler](settings)


@registry.samplers("tpe")
def tpe_sampler(*, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's TPE. constant_liar: concurrent trials don't all get the same proposal.
    multivariate: the dimensions are modelled jointly (learning rate with batch size,
    width with depth), not each alone. group: in a conditional space (options.v1), the
    trials are split by which dimensions they have, and each group is modelled on its
    own, so one option's dimensions are learned from the trials that chose it."""
    with warnings.catch_warnings():  # multivariate and group are marked experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, multivariate=True, group=True)


@registry.samplers("random")
def random_sampler(*, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@registry.schedulers("asha")
def asha_scheduler(settings: SweepSettings) -> TrialScheduler:
    """ASHA: rungs at grace_period * reduction_factor^k up to max_t, in time_attr's unit."""
    if settings.time_attr not in ASHA_TIME_ATTRS:
        raise ValueError(f"--time-attr: expected evaluations or epochs, got {settings.time_attr!r}")
    return ASHAScheduler(
        time_attr=ASHA_TIME_ATTRS[settings.time_attr],
        # Ray annotates these int, yet compares and divides them as numbers: epochs are fractional
        max_t=settings.max_t,  # type: ignore[arg-type]
        grace_period=settings.grace_period,  # type: ignore[arg-type]
        reduction_factor=settings.reduction_factor,
    )


@registry.schedulers("none")
def no_scheduler(settings: SweepSettings) -> TrialScheduler:
    """Every trial trains to its own end."""
    return FIFOScheduler()
