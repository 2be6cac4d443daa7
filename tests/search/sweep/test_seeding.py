"""What a sweep's sampler is given before its first proposal (search/sweep/seeding.py,
search/sweep/algorithms.py): the space's defaults enqueued first, an earlier sweep's
finished trials added to the study, TPE's settings. Real Optuna, no Ray."""

from typing import Dict, List

import optuna
import pytest
from search_testing import REPO
from sweep_fixtures import FAST, SPACE

from search.space import DefaultSuggester, Space, show_value
from search.sweep.algorithms import searcher, tpe_sampler
from search.sweep.seeding import DEFAULTS_KEY, ENQUEUED_KEY, default_point, start_points, warm_start
from search.sweep.settings import SweepSettings
from search.sweep.trial import SEED_KEY, derive_seed, trial_config
from search.tracking.history import PastTrial

WIDTH = "components.tagger.model.tok2vec.width"
DEPTH = "components.tagger.model.tok2vec.depth"
LEARN_RATE = "training.optimizer.learn_rate"
DROPOUT = "components.tagger.model.tok2vec.dropout"
VECTORS = "components.tagger.model.tok2vec.pretrained_vectors"
AVERAGES = "training.optimizer.use_averages"


@pytest.fixture(scope="module")
def space() -> Space:
    return Space.from_disk(SPACE, FAST)


def _shown(values: Dict) -> Dict[str, str]:
    """Values as a trial's MLflow params show them."""
    return {k: show_value(v) for k, v in values.items()}


def _defaults(space: Space) -> Dict:
    return space.sample(DefaultSuggester(space))[1]


def test_the_defaults_are_the_first_trial_and_marked(space):
    search = searcher(space, SweepSettings(space_path=str(SPACE), seed=5))
    first, second = search.suggest("a"), search.suggest("b")
    assert first[DEFAULTS_KEY] is True and DEFAULTS_KEY not in second
    assert trial_config(space, first)[1] == _defaults(space)
    assert trial_config(space, second)[1] != _defaults(space)
    assert first[SEED_KEY] == derive_seed(5, 0)  # the seed a trial number 0 always had


def test_the_spaces_enqueued_values_follow_the_defaults_one_at_a_time(space):
    # spaces/tagger.cfg enqueues its vectors and the optimizer's averages
    assert space.enqueued() == [{VECTORS: "${paths.vectors}"}, {AVERAGES: True}]
    search = searcher(space, SweepSettings(space_path=str(SPACE), seed=5))
    _, second, third, fourth = (search.suggest(str(i)) for i in range(4))
    assert all(DEFAULTS_KEY not in trial for trial in (second, third, fourth))
    assert second[ENQUEUED_KEY] == f"{VECTORS} = ${{paths.vectors}}"
    assert third[ENQUEUED_KEY] == f"{AVERAGES} = true" and ENQUEUED_KEY not in fourth
    with_vectors = {**_defaults(space), VECTORS: "${paths.vectors}"}
    with_averages = {**_defaults(space), AVERAGES: True}
    assert trial_config(space, second)[1] == with_vectors
    assert trial_config(space, third)[1] == with_averages
    assert trial_config(space, fourth)[1] not in (with_vectors, with_averages, _defaults(space))
    assert [second[SEED_KEY], third[SEED_KEY]] == [derive_seed(5, 1), derive_seed(5, 2)]


def test_an_enqueued_option_brings_its_own_dimensions_at_their_defaults(tmp_path):
    text = (REPO / "spaces" / "parser.cfg").read_text()
    path = tmp_path / "space.cfg"
    path.write_text(text.replace('[training.optimizer.learn_rate]\n@distributions = "options.v1"\ndefault = "constant"',
                                 '[training.optimizer.learn_rate]\n@distributions = "options.v1"\ndefault = "constant"\n'
                                 'enqueue = ["warmup_linear"]'))
    parser = Space.from_disk(path)
    points = start_points(parser)
    assert len(points) == 3  # the defaults, the vectors, the warm-up schedule
    assert points[2][LEARN_RATE] == "warmup_linear"
    assert points[2][LEARN_RATE + ".warmup_linear.initial_rate"] == 0.002
    assert LEARN_RATE + ".constant.rate" not in points[2]
    assert {k: v for k, v in points[2].items() if not k.startswith(LEARN_RATE)} == \
        {k: v for k, v in points[0].items() if not k.startswith(LEARN_RATE)}


def test_no_defaults_first_samples_from_the_start(space):
    search = searcher(space, SweepSettings(space_path=str(SPACE), seed=5, defaults_first=False))
    proposals = [search.suggest(str(i)) for i in range(3)]
    assert all(DEFAULTS_KEY not in p and ENQUEUED_KEY not in p for p in proposals)
    assert all(trial_config(space, p)[1] != _defaults(space) for p in proposals)


def test_default_point_is_what_the_sampler_returns(space):
    point = default_point(space)
    assert point[WIDTH] == 0  # an ordinal is asked as an index: 32 is FAST's first width
    assert point[LEARN_RATE] == 0.001


@pytest.mark.parametrize("change, kept_out, dropped", [
    ({}, [], {}),
    ({WIDTH: "64"}, [], {}),  # another of the space's values
    ({WIDTH: "512"}, [WIDTH], {WIDTH: 1}),  # not one of its values
    ({DEPTH: "7"}, [DEPTH], {DEPTH: 1}),  # above its range (2-3 here)
    ({LEARN_RATE: "0.5"}, [LEARN_RATE], {LEARN_RATE: 1}),
    ({"training.dropout": "0.12"}, ["training.dropout"], {"training.dropout": 1}),  # off its 0.05 grid
    ({DROPOUT: "0.3"}, [DROPOUT], {DROPOUT: 1}),  # not a choice
    ({DROPOUT: "null"}, [], {}),  # null is a choice
    ({LEARN_RATE: "fast"}, [LEARN_RATE], {LEARN_RATE: 1}),  # not a number
    ({"components.tagger.model.tok2vec.gone": "1"}, [], {}),  # a dimension this space lacks is ignored
])
def test_warm_start_keeps_the_values_this_space_can_take(space, change, kept_out, dropped):
    params = {**_shown(_defaults(space)), **change}
    warm = warm_start(space, [PastTrial("run1", params, 0.75)])
    assert warm.dropped == dropped and warm.skipped == 0
    (trial,) = warm.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.75
    expected = {k: v for k, v in default_point(space).items() if k not in kept_out}
    if change.get(WIDTH) == "64":
        expected[WIDTH] = 1
    if change.get(DROPOUT) == "null":
        expected[DROPOUT] = None
    assert trial.params == expected
    assert (warm.warning("old") is None) == (not dropped)


def test_warm_start_skips_a_trial_with_nothing_in_this_space_and_says_so_once(space):
    past = [PastTrial("a", {"x": "1"}, 0.1), PastTrial("b", {**_shown(_defaults(space)), DEPTH: "9"}, 0.2),
            PastTrial("c", {**_shown(_defaults(space)), DEPTH: "8"}, 0.3)]
    warm = warm_start(space, past)
    assert [t.value for t in warm.trials] == [0.2, 0.3]
    assert warm.warning("old") == (
        f"warning: --warm-start old: values outside this space's ranges dropped: {DEPTH} (2); "
        "1 trials with no value in this space left out"
    )


def test_warm_started_study_holds_the_past_trials_after_the_defaults(space):
    warm = warm_start(space, [PastTrial(str(i), _shown(_defaults(space)), 0.1 * i) for i in range(3)])
    search = searcher(space, SweepSettings(space_path=str(SPACE), seed=1), warm)
    first, vectors, averages, new = (search.suggest(name) for name in "abcd")
    assert first[DEFAULTS_KEY] is True
    # trial numbers: the defaults 0, the space's enqueued vectors and averages 1-2, the three
    # past trials 3-5, the first new one 6
    assert vectors[SEED_KEY] == derive_seed(1, 1) and vectors[VECTORS] is not None
    assert averages[SEED_KEY] == derive_seed(1, 2) and averages[AVERAGES] is True
    assert ENQUEUED_KEY not in new and new[SEED_KEY] == derive_seed(1, 6)
    states = [t.state for t in search._study().trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3


def _proposals(sampler: optuna.samplers.BaseSampler, space: Space, n: int) -> List[Dict]:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    out = []
    for _ in range(n):
        trial = study.ask()
        _, values = space.sample(trial)
        study.tell(trial, float(len(str(values))) / 1000)  # any deterministic score
        out.append(values)
    return out


def test_tpe_is_multivariate_grouped_and_seeded():
    conditional = Space.from_disk(REPO / "spaces" / "textcat.cfg")
    assert any(d.condition for d in conditional.dimensions), "expected a conditional space"
    sampler = tpe_sampler(seed=3)
    assert sampler._multivariate and sampler._group  # the settings documented in the tpe sampler
    first = _proposals(sampler, conditional, 14)  # past TPE's 10 random startup trials
    again = _proposals(tpe_sampler(seed=3), conditional, 14)
    assert first == again
