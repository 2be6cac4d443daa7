"""`archsweep export --format spacy` (search/tracking/spacy_export.py), checked with spaCy
itself: the bundled samples converted to .spacy (`spacy convert` for CoNLL-U and the NER
file, a DocBin for the text classifier), each exported config trained by
`python -m spacy train` for a few steps, and spaCy's initialised model holding exactly
as many parameters as archsweep's model of the same config on the same data."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from confection import Config
from search_testing import ARCHSWEEP, PATHS, REPO, run_cli

from archs import registry
from search.tracking.export import export_best
from search.tracking.spacy_export import SpacyExport, SpacyExportError, SpacyExportOptions, to_spacy_config
from search.training.config import load_config
from search.training.debug import count_params, describe_pipeline

needs_spacy = pytest.mark.skipif(
    importlib.util.find_spec("spacy") is None or importlib.util.find_spec("spacy_legacy") is None,
    reason="spaCy 3.8 and spacy-legacy are not installed (pip install -e '.[test]')",
)
CONFIGS = REPO / "configs"
UD = REPO / "data" / "ud_english_ewt"
UNER = REPO / "data" / "uner_english_ewt"
NER_PATHS = {"paths.train": str(UNER / "en_ewt-ud-train.approx.sample.iob2"), "paths.dev": str(UNER / "en_ewt-ud-dev.sample.iob2")}
TEXTCAT_PATHS = {
    "paths.train": str(REPO / "data/textcat/trec/TREC.train.sample"),
    "paths.dev": str(REPO / "data/textcat/trec/TREC.test.sample"),
}
# (archsweep config, its data, the .spacy files' stem) per task
TASKS = {
    "tagger": ("tagger.cfg", PATHS, "ud"),
    "parser": ("parser.cfg", PATHS, "ud"),
    "ner": ("ner.cfg", NER_PATHS, "ner"),
    "textcat": ("textcat_trec.cfg", TEXTCAT_PATHS, "textcat"),
}
GLOVE = REPO / "data/vectors/glove.6B.50d.sample.txt"
TRAIN_WAIT_S = 240


def _env() -> Dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _spacy(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "spacy", *args], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _finish(procs: List[Tuple[str, subprocess.Popen]]) -> Dict[str, Tuple[int, str]]:
    """Wait for every process (bounded); kill the ones that outlive the wait."""
    results = {}
    for name, proc in procs:
        try:
            out, _ = proc.communicate(timeout=TRAIN_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=30)
            out += f"\n(killed after {TRAIN_WAIT_S} s)"
        results[name] = (proc.returncode, out)
    return results


def _write_conll_copies(folder: Path) -> None:
    """The UD sample with UPOS copied into the XPOS column (spaCy's tagger learns the tag:
    this makes it the UPOS tagger archsweep trains), and the UNER sample as word/tag
    lines for spaCy's `ner` converter."""
    folder.mkdir()
    for split, name in (("train", "en_ewt-ud-train.sample.conllu"), ("dev", "en_ewt-ud-dev.sample.conllu")):
        lines = []
        for line in (UD / name).read_text(encoding="utf8").splitlines():
            cols = line.split("\t")
            if len(cols) == 10:
                cols[4] = cols[3]
            lines.append("\t".join(cols))
        (folder / "ud" / f"{split}.conllu").parent.mkdir(exist_ok=True)
        (folder / "ud" / f"{split}.conllu").write_text("\n".join(lines) + "\n", encoding="utf8")
    (folder / "ner").mkdir()
    for split, path in (("train", NER_PATHS["paths.train"]), ("dev", NER_PATHS["paths.dev"])):
        lines = []
        for line in Path(path).read_text(encoding="utf8").splitlines():
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            lines.append(f"{cols[1]} {cols[2]}" if len(cols) > 2 else "")
        (folder / "ner" / f"{split}.ner").write_text("\n".join(lines) + "\n", encoding="utf8")


def _write_textcat_docbins(folder: Path) -> None:
    """The TREC sample as DocBins: archsweep's reader's words and labels, every label
    scored on every doc (0 or 1), as spaCy's textcat expects."""
    import spacy
    from spacy.tokens import Doc, DocBin

    config = load_config(CONFIGS / "textcat_trec.cfg", TEXTCAT_PATHS).interpolate()
    vocab = spacy.blank("en").vocab
    for split in ("train", "dev"):
        examples = list(registry.resolve({"corpus": config["corpora"][split]})["corpus"]())
        labels = sorted({label for eg in examples for label in eg.gold["cats"]})
        docs = DocBin()
        for eg in examples:
            doc = Doc(vocab, words=list(eg.doc.words))
            doc.cats = {label: float(eg.gold["cats"].get(label, 0.0)) for label in labels}
            docs.add(doc)
        (folder / "textcat").mkdir(exist_ok=True)
        docs.to_disk(folder / "textcat" / f"{split}.spacy")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Path:
    """.spacy files of the bundled samples: <dir>/{ud,ner,textcat}/{train,dev}.spacy, and the
    bundled GloVe sample as a spaCy vectors directory, <dir>/vectors."""
    folder = tmp_path_factory.mktemp("spacy-corpora") / "data"
    _write_conll_copies(folder)
    converts = [
        (kind, _spacy("convert", kind, kind, "--converter", converter, "-n", "1", cwd=folder))
        for kind, converter in (("ud", "conllu"), ("ner", "ner"))
    ] + [("vectors", subprocess.Popen([str(ARCHSWEEP), "spacy-vectors", str(GLOVE), "vectors"], cwd=folder, env=_env(),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True))]
    _write_textcat_docbins(folder)
    for kind, (rc, out) in _finish(converts).items():
        assert rc == 0, f"spacy convert / archsweep spacy-vectors ({kind}) failed:\n{out[-3000:]}"
    return folder


def _spacy_params(config_text: str, component: str) -> int:
    """Parameters of spaCy's model of the component after `nlp.initialize` on the config's corpus."""
    from spacy.training.initialize import init_nlp

    nlp = init_nlp(Config().from_str(config_text, interpolate=False))
    return count_params(nlp.get_pipe(component).model)


@pytest.fixture(scope="module")
def trained(corpora, tmp_path_factory) -> Dict[str, Tuple[str, int, str]]:
    """Each task's config exported for spaCy and trained by `spacy train` for 5 steps (the
    four runs at once): {task: (the exported config's text, spacy train's exit status, its output)}."""
    folder = tmp_path_factory.mktemp("spacy-train")
    exported, runs = {}, []
    for task, (config_name, paths, stem) in TASKS.items():
        options = SpacyExportOptions(train=str(corpora / stem / "train.spacy"), dev=str(corpora / stem / "dev.spacy"))
        text = to_spacy_config(load_config(CONFIGS / config_name, paths), options).to_str()
        (folder / f"{task}.cfg").write_text(text)
        exported[task] = text
        runs.append((task, _spacy("train", f"{task}.cfg", "--training.max_steps", "5", "--training.eval_frequency", "5",
                                  "--output", f"out-{task}", cwd=folder)))
    results = _finish(runs)
    return {task: (exported[task], *results[task]) for task in TASKS}


@needs_spacy
@pytest.mark.parametrize("task", list(TASKS))
def test_spacy_trains_the_export_and_has_archsweeps_parameter_count(task, trained):
    text, rc, out = trained[task]
    assert rc == 0, f"spacy train failed:\n{out[-3000:]}"
    assert "Saved pipeline to output directory" in out, out[-3000:]
    config_name, paths, _ = TASKS[task]
    ours = describe_pipeline(load_config(CONFIGS / config_name, paths))[task]["params"]
    assert _spacy_params(text, task) == ours


@needs_spacy
@pytest.mark.parametrize(
    "config_name, overrides, component",
    [
        pytest.param("tagger.cfg", {
            "components.tagger.model.tok2vec": {
                "@architectures": "spacy.HashCharEmbedCNN.v1", "width": 64, "depth": 2, "embed_size": 2000,
                "window_size": 1, "maxout_pieces": 3, "nM": 16, "nC": 4,
            },
        }, "tagger", id="HashCharEmbedCNN-as-Tok2Vec.v2"),
        pytest.param("tagger.cfg", {
            "components.tagger.model.tok2vec": {
                "@architectures": "spacy.Tok2Vec.v2",
                "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 64, "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                          "rows": [5000, 1000, 2500, 2500], "include_static_vectors": False},
                "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 64, "depth": 2, "window_size": 1,
                           "maxout_pieces": 3},
            },
        }, "tagger", id="Tok2Vec.v2-as-it-is"),
        pytest.param("tagger.cfg", {"components.tagger.model.tok2vec.pretrained_vectors": str(GLOVE)}, "tagger",
                     id="HashEmbedCNN-with-vectors"),
        pytest.param("parser.cfg", {"components.parser.model.use_upper": False}, "parser", id="parser-without-upper"),
        pytest.param("parser.cfg", {"components.parser.model.nr_feature_tokens": 13}, "parser", id="parser-extra-state-tokens"),
        pytest.param("ner.cfg", {"components.ner.model.nr_feature_tokens": 6}, "ner", id="ner-extra-state-tokens"),
    ],
)
def test_mapped_architectures_keep_the_parameter_count(config_name, overrides, component, corpora):
    """The settings written as another spaCy architecture build a model of the same size
    (on the first 150 sentences: archsweep's limit is written to spaCy's reader)."""
    stem = "ner" if component == "ner" else "ud"
    paths = NER_PATHS if component == "ner" else PATHS
    config = load_config(CONFIGS / config_name, {**paths, "corpora.train.limit": 150, **overrides})
    exported = to_spacy_config(config, SpacyExportOptions(train=str(corpora / stem / "train.spacy"),
                                                          dev=str(corpora / stem / "dev.spacy"), vectors=str(corpora / "vectors")))
    assert _spacy_params(exported.to_str(), component) == describe_pipeline(config)[component]["params"]


@needs_spacy
def test_a_sweeps_best_trial_exported_for_spacy_trains(finished_sweep, corpora, tmp_path):
    """The session's tagger sweep, exported by the CLI with --format spacy, trains in spaCy,
    and spaCy's model has the size of the trial's. The best trial may be the space's enqueued
    one, with the (sample) GloVe vectors: spaCy then reads them from their spaCy directory."""
    plain = export_best(finished_sweep.server.uri, parent_run_id=finished_sweep.result.parent_run_id,
                        output=tmp_path / "best.cfg")
    trial = Config().from_disk(plain, interpolate=False)
    searched = trial["components"]["tagger"]["model"]["tok2vec"]
    vectors = ["--spacy-vectors", str(corpora / "vectors")] if searched.get("pretrained_vectors") else []
    out = tmp_path / "best-spacy.cfg"
    sweep_args = ["--parent-run", finished_sweep.result.parent_run_id, "--tracking-uri", finished_sweep.server.uri]
    proc = run_cli("export", *sweep_args, "--format", "spacy", "--spacy-omit-fixed-dropout",
                   "--spacy-train", str(corpora / "ud" / "train.spacy"), "--spacy-dev", str(corpora / "ud" / "dev.spacy"),
                   *vectors, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.splitlines()[:3] == plain.read_text().splitlines()[:3]  # the same trial's header
    spacy_config = Config().from_str(text, interpolate=False)
    written = spacy_config["components"]["tagger"]["model"]["tok2vec"]
    assert written == {**{k: v for k, v in searched.items() if k != "dropout"}, **({"pretrained_vectors": True} if vectors else {})}
    assert spacy_config["training"]["dropout"] == trial["training"]["dropout"]
    assert spacy_config["training"]["batcher"]["size"]["start"] == trial["training"]["batcher"]["size"]["start"]
    assert spacy_config["corpora"]["train"]["limit"] == trial["corpora"]["train"]["limit"]
    assert ("components.tagger.model.tok2vec.dropout" in text) == bool(searched.get("dropout"))
    run = _finish([("best", _spacy("train", str(out), "--training.max_steps", "5", "--training.eval_frequency", "5",
                                   cwd=tmp_path))])
    rc, output = run["best"]
    assert rc == 0, output[-3000:]
    assert _spacy_params(text, "tagger") == describe_pipeline(trial)["tagger"]["params"]


# ---------------------------------------------------------------- what is refused (no spaCy needed)


def _tagger(**tok2vec) -> Config:
    return load_config(CONFIGS / "tagger.cfg", {**PATHS, **{f"components.tagger.model.tok2vec.{k}": v for k, v in tok2vec.items()}})


def test_the_tok2vecs_own_dropout_is_refused_or_left_out_with_a_note():
    with pytest.raises(SpacyExportError, match=r"^components\.tagger\.model\.tok2vec\.dropout: .*expected null, got 0\.2.*--spacy-omit-fixed-dropout"):
        to_spacy_config(_tagger(dropout=0.2))
    exported = to_spacy_config(_tagger(dropout=0.2), SpacyExportOptions(omit_fixed_dropout=True))
    assert "dropout" not in exported.config["components"]["tagger"]["model"]["tok2vec"]
    assert "components.tagger.model.tok2vec.dropout = 0.2 left out: spaCy's spacy.HashEmbedCNN.v1 has no dropout of its own" in exported.notes
    assert "dropout" not in to_spacy_config(_tagger(dropout=None)).config["components"]["tagger"]["model"]["tok2vec"]


def test_static_vectors_need_a_spacy_vectors_directory():
    config = _tagger(pretrained_vectors=str(GLOVE))
    with pytest.raises(SpacyExportError, match=r"^components\.tagger\.model\.tok2vec\.pretrained_vectors: .*--spacy-vectors DIR"):
        to_spacy_config(config)
    exported = to_spacy_config(config, SpacyExportOptions(vectors="vectors-dir"))
    assert exported.config["components"]["tagger"]["model"]["tok2vec"]["pretrained_vectors"] is True
    assert exported.config["paths"]["vectors"] == "vectors-dir"
    assert exported.config["initialize"]["vectors"] == "${paths.vectors}"


@pytest.mark.parametrize(
    "config_name, overrides, message",
    [
        pytest.param("tagger.cfg", {"components.tagger.model.tok2vec": {
            "@architectures": "spacy.HashCharEmbedBiLSTM.v1", "width": 64, "depth": 1, "embed_size": 2000,
            "maxout_pieces": 3, "nM": 16, "nC": 4}},
            r"^components\.tagger\.model\.tok2vec: spacy\.HashCharEmbedBiLSTM\.v1 has no spaCy counterpart", id="bilstm"),
        pytest.param("textcat_trec.cfg", {"components.textcat.model": {
            "@architectures": "spacy.TextCatLowData.v1", "width": 64, "dropout": None,
            "pretrained_vectors": str(GLOVE)}},
            r"^components\.textcat\.model: spacy\.TextCatLowData\.v1 cannot be trained in spaCy 3\.8", id="lowdata"),
        pytest.param("textcat_trec.cfg", {"components.textcat.model.dropout": 0.1},
            r"^components\.textcat\.model\.dropout: .*expected null, got 0\.1", id="ensemble-dropout"),
        pytest.param("textcat_trec.cfg", {"components.textcat.model.pretrained_vectors": str(GLOVE)},
            r"^components\.textcat\.model\.pretrained_vectors: spaCy 3\.8's spacy\.TextCatEnsemble\.v1 fails to initialize", id="ensemble-vectors"),
        pytest.param("parser.cfg", {"components.parser.model.nr_feature_tokens": 6},
            r"^components\.parser\.model\.nr_feature_tokens: spaCy's parser describes a state by 8 or 13 tokens .*got 6", id="parser-nF"),
        pytest.param("ner.cfg", {"components.ner.model.maxout_pieces": 1},
            r"^components\.ner\.model\.maxout_pieces: spaCy 3\.8 trains a 1-piece hidden layer under an upper layer with relu",
            id="ner-one-piece-with-upper"),
        pytest.param("entity_linker.cfg", {}, r"^components\.entity_linker: the entity linker is not exported", id="entity-linker"),
        pytest.param("tagger_multitask.cfg", {},
            r"^components\.xpos_tagger\.label_attr: spaCy's taggers all learn Token\.tag_", id="upos-and-xpos"),
        pytest.param("transformer_tagger.cfg", {}, r"^components\.transformer: transformer pipelines are not exported", id="transformer"),
    ],
)
def test_settings_without_a_spacy_counterpart_are_refused(config_name, overrides, message):
    with pytest.raises(SpacyExportError, match=message):
        to_spacy_config(load_config(CONFIGS / config_name, overrides))


def test_score_names_and_notes():
    exported = to_spacy_config(load_config(CONFIGS / "textcat_trec.cfg", TEXTCAT_PATHS))
    assert exported.config["training"]["score_weights"] == {"cats_micro_f": 1.0}
    assert exported.config["components"]["textcat"]["factory"] == "textcat"
    tagger = to_spacy_config(load_config(CONFIGS / "tagger.cfg", PATHS))
    assert tagger.config["training"]["score_weights"] == {"tag_acc": 1.0}
    assert any(note.startswith("components.tagger: spaCy's tagger learns Token.tag_") for note in tagger.notes)
    text = SpacyExport(tagger.config, []).to_str()
    assert text.splitlines()[0] == "# A spaCy 3.8 training config: python -m spacy train THIS_FILE --paths.train TRAIN.spacy --paths.dev DEV.spacy"


def test_cli_refuses_with_one_error_line(tmp_path):
    out = tmp_path / "x.cfg"
    proc = run_cli("export", "--format", "spacy", "--config", str(CONFIGS / "entity_linker.cfg"), "-o", str(out))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: components.entity_linker: the entity linker is not exported: spaCy's entity_linker needs a knowledge "
        "base built with spaCy (its own KB format and entity vectors), and its candidate generation differs"
    ]
    assert not out.exists()
    proc = run_cli("export", "--format", "yaml", "--config", str(CONFIGS / "tagger.cfg"), "-o", str(out))
    assert (proc.returncode, proc.stderr.strip()) == (1, "error: --format: expected archsweep or spacy, got 'yaml'")
