"""The archsweep registry: Thinc's registries plus spaCy's config sections.

Like `spacy.registry`, it resolves `@architectures`, `@readers`, `@batchers`, `@distributions` (search spaces), `@span_getters` (transformer windows)
(and names the sweeps' `samplers` and `schedulers`)
and Thinc's own `@layers`, `@optimizers`, `@schedules`, ... blocks of a
confection config.
"""

import catalogue
import thinc.api


class registry(thinc.api.registry):
    architectures = catalogue.create("archsweep", "architectures", entry_points=True)
    readers = catalogue.create("archsweep", "readers", entry_points=True)
    batchers = catalogue.create("archsweep", "batchers", entry_points=True)
    factories = catalogue.create("archsweep", "factories", entry_points=True)
    distributions = catalogue.create("archsweep", "distributions", entry_points=True)
    span_getters = catalogue.create("archsweep", "span_getters", entry_points=True)
    # sweeps: `archsweep sweep --search NAME` (an Optuna sampler) and `--scheduler NAME` (a Ray Tune scheduler)
    samplers = catalogue.create("archsweep", "samplers", entry_points=True)
    schedulers = catalogue.create("archsweep", "schedulers", entry_points=True)
