"""search.training.corpus_cache: corpora read once per process, keyed by the reader's
settings and the files' identity; trials give the same scores with it as without it,
also one after another in one process (as a sweep worker runs them)."""

import json
import os
import subprocess
import sys

import optuna
import pytest
from search_testing import DEV, PATHS, REPO, TRAIN

from search.corpora.conllu import read_conllu
from search.space import Space
from search.sweep import DefineByRun
from search.sweep.trial import run_trial
from search.training.corpus_cache import CorpusCache, cache_key

TINY = {**PATHS, "corpora.train.limit": 60, "corpora.dev.limit": 30, "training.max_steps": 6, "training.eval_frequency": 3}


def conllu_block(path, **settings):
    return {"@readers": "archsweep.ConllUCorpus.v1", "path": str(path), **settings}


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "train.conllu"
    path.write_text(TRAIN.read_text(encoding="utf8"), encoding="utf8")
    return path


def counting_reader(path, calls):
    def read():
        calls.append(path)
        return read_conllu(path)

    return read


def test_same_settings_and_file_hit(corpus_file):
    cache, calls = CorpusCache(), []
    first = cache.examples(conllu_block(corpus_file), counting_reader(corpus_file, calls))
    again = cache.examples(conllu_block(corpus_file), counting_reader(corpus_file, calls))
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert [e.doc.words for e in again] == [e.doc.words for e in first]
    assert all((a.doc.features == b.doc.features).all() and a.gold == b.gold for a, b in zip(first, again))


def test_changed_file_misses(corpus_file):
    cache, calls = CorpusCache(), []
    block = conllu_block(corpus_file)
    cache.examples(block, counting_reader(corpus_file, calls))
    # another sentence: another size
    corpus_file.write_text(corpus_file.read_text(encoding="utf8") + DEV.read_text(encoding="utf8"), encoding="utf8")
    longer = cache.examples(block, counting_reader(corpus_file, calls))
    assert len(calls) == 2 and len(longer) == len(read_conllu(corpus_file))
    # the same size, written later: read again too
    stat = corpus_file.stat()
    os.utime(corpus_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    cache.examples(block, counting_reader(corpus_file, calls))
    assert len(calls) == 3 and cache.hits == 0


def test_changed_reader_setting_misses(corpus_file):
    cache, calls = CorpusCache(), []
    full = cache.examples(conllu_block(corpus_file), counting_reader(corpus_file, calls))
    limited = cache.examples(conllu_block(corpus_file, limit=10), lambda: read_conllu(corpus_file, limit=10))
    assert cache.misses == 2 and cache.hits == 0
    assert len(limited) == 10 < len(full)
    assert cache_key(conllu_block(corpus_file, limit=10)) != cache_key(conllu_block(corpus_file))
    assert cache_key(conllu_block(corpus_file, limit=10)) == cache_key(conllu_block(corpus_file, limit=10))


def test_a_folder_is_keyed_by_the_files_in_it(tmp_path, corpus_file):
    before = cache_key({"@readers": "some.Reader.v1", "path": str(tmp_path)})
    (tmp_path / "more.conllu").write_text(DEV.read_text(encoding="utf8"), encoding="utf8")
    assert cache_key({"@readers": "some.Reader.v1", "path": str(tmp_path)}) != before


def test_each_hit_is_a_fresh_copy(corpus_file):
    cache = CorpusCache()
    block = conllu_block(corpus_file)
    cache.examples(block, lambda: read_conllu(corpus_file))
    first = cache.examples(block, lambda: read_conllu(corpus_file))
    first[0].gold["upos"][0] = "CHANGED"
    first[0].doc.features[0, 0] = 0
    second = cache.examples(block, lambda: read_conllu(corpus_file))
    fresh = read_conllu(corpus_file)
    assert second[0].gold == fresh[0].gold and (second[0].doc.features == fresh[0].doc.features).all()


def test_oldest_entry_goes_first(tmp_path):
    cache = CorpusCache(max_entries=2)
    for limit in (1, 2, 3):
        cache.examples(conllu_block(TRAIN, limit=limit), lambda limit=limit: read_conllu(TRAIN, limit=limit))
    assert len(cache) == 2
    cache.examples(conllu_block(TRAIN, limit=3), lambda: read_conllu(TRAIN, limit=3))
    assert cache.hits == 1
    cache.examples(conllu_block(TRAIN, limit=1), lambda: read_conllu(TRAIN, limit=1))
    assert cache.misses == 4  # limit=1 was dropped


# ------------------------------------------------------------------ the same scores, cached or not


def sampled_trials(space, n):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    sample = DefineByRun(space, sweep_seed=0)
    trials = []
    for _ in range(n):
        trial = study.ask()
        trials.append({**sample(trial), **trial.params})
    return trials


def history(result):
    return [(row.step, row.score, row.scores, row.losses, row.model_params) for row in result.history]


TRIAL_IN_A_FRESH_PROCESS = """
import json, sys
from search.space import Space
from search.sweep.trial import run_trial
space = Space.from_disk(sys.argv[1], json.loads(sys.argv[2]))
result = run_trial(space, json.loads(sys.argv[3]), lambda metrics: None)
print(json.dumps([(r.step, r.score, r.scores, r.losses, r.model_params) for r in result.history]))
"""


def test_trials_score_the_same_with_the_cache_and_after_other_trials():
    space = Space.from_disk(REPO / "spaces" / "tagger.cfg", TINY)
    first, second = sampled_trials(space, 2)
    cache = CorpusCache()
    earlier = run_trial(space, first, lambda metrics: None, corpus_cache=cache)
    assert (cache.hits, cache.misses) == (0, 2)
    cached = run_trial(space, second, lambda metrics: None, corpus_cache=cache)
    assert (cache.hits, cache.misses) == (2, 2)
    uncached = run_trial(space, second, lambda metrics: None)
    assert history(cached) == history(uncached) != history(earlier)
    # ... and what the second trial scores alone, in a process of its own
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    alone = subprocess.run(
        [sys.executable, "-c", TRIAL_IN_A_FRESH_PROCESS, str(REPO / "spaces" / "tagger.cfg"), json.dumps(TINY), json.dumps(second)],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env, check=True,
    )
    assert json.loads(json.dumps(history(cached))) == json.loads(alone.stdout.strip().splitlines()[-1])
