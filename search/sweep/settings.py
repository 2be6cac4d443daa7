"""A sweep's settings: what `archsweep sweep` takes, as one dataclass."""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

# the metric trials report and the sweep maximises: the weighted dev score
METRIC = "score"


@dataclass
class SweepSettings:
    space_path: str
    num_samples: int = 8
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: Optional[str] = None
    tracking_uri: Optional[str] = None
    experiment: Optional[str] = None
    storage: Optional[str] = None
    seed: int = 0
    search: str = "tpe"  # tpe | random
    scheduler: str = "asha"  # asha | none
    # what ASHA's rungs count: a trial's evaluations (Tune's training_iteration) or the epochs
    # it has trained (fractional). Epochs compare trials fairly when a trial's batch size or
    # evaluation frequency is searched: the same number of evaluations is then unequal training.
    time_attr: str = "evaluations"  # evaluations | epochs
    grace_period: float = 1
    reduction_factor: int = 2
    max_t: float = 100  # ASHA's last rung, in time_attr's unit
    budget_epochs: float = 0.0  # stop the sweep after this many trial-epochs in all (0: num_samples decides)
    max_failures: int = 2  # times a failed trial is run again (a lost node, a killed worker) before it counts as failed
    # seconds the sweep's end keeps trying an unreachable MLflow server before it saves
    # the pending tracking operations for `archsweep sync`
    tracking_wait: float = 120.0
    resume: bool = False
    # the space's defaults are the first trial: the sweep's best is never worse than the config it started from
    defaults_first: bool = True
    # an earlier sweep's experiment (same tracking store) whose finished trials seed the sampler
    warm_start: Optional[str] = None
    overrides: Dict[str, Any] = field(default_factory=dict)
