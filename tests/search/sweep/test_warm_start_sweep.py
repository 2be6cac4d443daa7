"""Two real sweeps on the session's Ray cluster and MLflow server: the first runs the
space's defaults as its first trial and its enqueued vectors as the second; the second is warm-started from the first
(`--warm-start`), with a narrower depth range, so the first's out-of-range depths are
dropped with one warning. Then `archsweep export` within a budget on the first."""

import pytest
from search_testing import run_cli
from sweep_fixtures import FAST, SPACE, cli_overrides

from search.space import DefaultSuggester, Space, show_value
from search.sweep import SweepSettings, sweep
from search.sweep.seeding import DEFAULTS_TAG, ENQUEUED_TAG
from search.sweep.trial import derive_seed

DEPTH = "components.tagger.model.tok2vec.depth"
VECTORS = "components.tagger.model.tok2vec.pretrained_vectors"
NARROWER = {**FAST, f"{DEPTH}.low": 3, f"{DEPTH}.high": 4, f"{DEPTH}.default": 3}


@pytest.fixture(scope="module")
def two_sweeps(ray_cluster, mlflow_server, tmp_path_factory):
    """Sweep "seeding-first" (2 trials, the Python API), then "seeding-second"
    (2 trials, the command line) warm-started from it."""
    storage = str(tmp_path_factory.mktemp("seeding-sweeps"))
    common = dict(num_samples=2, max_concurrent=2, address=ray_cluster.address, tracking_uri=mlflow_server.uri,
                  storage=storage, search="random", scheduler="none", seed=3)
    first = sweep(SweepSettings(space_path=str(SPACE), experiment="seeding-first", overrides=dict(FAST), **common))
    second = run_cli(
        "sweep", str(SPACE), "--experiment", "seeding-second", "--warm-start", "seeding-first", "--num-samples", "2",
        "--address", ray_cluster.address, "--tracking-uri", mlflow_server.uri, "--storage", storage,
        "--scheduler", "none", "--seed", "3", *cli_overrides(NARROWER), timeout=300,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    return first, second, mlflow_server


def test_the_first_trial_is_the_defaults_in_the_table_and_in_mlflow(two_sweeps):
    first, _, server = two_sweeps
    space = Space.from_disk(SPACE, FAST)
    defaults = space.sample(DefaultSuggester(space))[1]
    marked = [t for t in first.trials if t.defaults]
    assert len(marked) == 1 and len(first.trials) == 2
    assert {k: show_value(v) for k, v in defaults.items()} == marked[0].values  # MLflow params, as the config shows them
    client = server.client()
    runs = {r.info.run_id: r for r in client.search_runs(
        [client.get_experiment_by_name("seeding-first").experiment_id], filter_string="tags.`archsweep.kind` = 'trial'")}
    assert [r.data.tags.get(DEFAULTS_TAG) for r in runs.values()].count("true") == 1
    assert runs[marked[0].run_id].data.tags[DEFAULTS_TAG] == "true"
    assert runs[marked[0].run_id].data.params["training.seed"] == str(derive_seed(3, 0))
    # the sweep's best is never worse than the defaults trial
    assert first.trials[0].best_score >= marked[0].best_score
    # the second trial: the defaults with the space's enqueued vectors
    (enqueued,) = [t for t in first.trials if not t.defaults]
    assert enqueued.enqueued == f"{VECTORS} = ${{paths.vectors}}"
    assert enqueued.values == {**marked[0].values, VECTORS: "${paths.vectors}"}
    assert runs[enqueued.run_id].data.tags[ENQUEUED_TAG] == enqueued.enqueued
    assert runs[enqueued.run_id].data.params["training.seed"] == str(derive_seed(3, 1))


def test_the_second_sweep_is_seeded_with_the_firsts_finished_trials(two_sweeps):
    first, second, server = two_sweeps
    finished = [t for t in first.trials if t.status == "finished"]
    client = server.client()
    (parent,) = client.search_runs([client.get_experiment_by_name("seeding-second").experiment_id],
                                   filter_string="tags.`archsweep.kind` = 'sweep'")
    assert parent.data.tags["archsweep.warm_start"] == f"seeding-first ({len(finished)} trials)"
    # its two trials: the defaults (number 0) and the enqueued vectors (1), the first sweep's trials after them
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.params["training.seed"] for c in children) == sorted([str(derive_seed(3, 0)), str(derive_seed(3, 1))])
    # the first sweep's two trials (the defaults, the enqueued vectors) had the default depth 2:
    # outside 3-4, dropped with one warning
    warnings = [line for line in second.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: --warm-start seeding-first: values outside this space's ranges dropped: {DEPTH} (2)"], second.stderr[-3000:]
    # the table marks the defaults trial and the enqueued one
    assert sum(line.endswith("  (the space's defaults)") for line in second.stdout.splitlines()) == 1, second.stdout
    assert sum(line.endswith(f"  (enqueued: {VECTORS} = ${{paths.vectors}})") for line in second.stdout.splitlines()) == 1, second.stdout


def test_warm_start_from_an_unknown_experiment_is_refused(two_sweeps, ray_cluster, mlflow_server):
    proc = run_cli("sweep", str(SPACE), "--warm-start", "no-such-sweep", "--tracking-uri", mlflow_server.uri,
                   "--address", ray_cluster.address, "--num-samples", "1")
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    # the sweeps that are there follow, newest first
    assert line.startswith(f"error: --warm-start no-such-sweep: no MLflow experiment named 'no-such-sweep' at {mlflow_server.uri}; the sweeps there")


def test_export_within_a_budget(two_sweeps, tmp_path):
    first, _, server = two_sweeps
    out = tmp_path / "best.cfg"
    refused = run_cli("export", "--experiment", "seeding-first", "--tracking-uri", server.uri, "--max-params", "1", "-o", str(out))
    assert refused.returncode == 1 and not out.exists()
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: sweep {first.parent_run_id}: none of the ") and "has at most 1 parameters; the closest: trial " in line
    written = run_cli("export", "--experiment", "seeding-first", "--tracking-uri", server.uri, "--min-words-per-second", "1", "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert "# Within the budget: at least 1 training words/s." in out.read_text().splitlines()
