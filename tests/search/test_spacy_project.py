"""A spaCy project in archsweep: configs as `spacy init config` writes them, .spacy
corpora as `spacy convert` (CoNLL-U, IOB) and DocBin (text classification) make them
from the bundled samples; trained with `archsweep train`, swept from the space
`archsweep space --from` writes. Bad spaCy configs give one error naming the key."""

import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from confection import Config
from search_testing import DEV, REPO, TRAIN
from typer.testing import CliRunner

from search.cli import app
from search.corpora.conllu import read_conllu
from search.corpora.iob2 import read_iob2
from search.training.config import ConfigError, load_config

spacy = pytest.importorskip("spacy", reason="spaCy (archsweep[spacy]) is not installed: .spacy corpora cannot be made")

UNER = REPO / "data" / "uner_english_ewt"
TREC = REPO / "data" / "textcat" / "trec"


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.configs: Dict[str, Path] = {}
        self.corpora: Dict[str, Dict[str, Path]] = {}

    def paths(self, kind: str) -> List[str]:
        return [f"--paths.train={self.corpora[kind]['train']}", f"--paths.dev={self.corpora[kind]['dev']}"]


def _iob_lines(src: Path) -> str:
    """UNER's IOB2 columns as spaCy's `iob` input: one sentence a line, token|tag."""
    sentences, words = [], []
    for line in src.read_text(encoding="utf8").splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if words:
                sentences.append(" ".join(words))
            words = []
            continue
        cols = line.split("\t")
        words.append(f"{cols[1]}|{cols[2]}")
    return "\n".join(sentences) + "\n"


def _docs(path: Path) -> List:
    from spacy.tokens import DocBin

    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def _save(docs: List, path: Path) -> Path:
    from spacy.tokens import DocBin

    DocBin(docs=docs, store_user_data=False).to_disk(path)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    from spacy.cli.convert import convert
    from spacy.cli.init_config import init_config

    root = tmp_path_factory.mktemp("spacy-project")
    made = Project(root)
    for name, pipeline in (("tagger", ["tagger"]), ("parser_ner", ["parser", "ner"]), ("textcat", ["textcat"])):
        made.configs[name] = root / f"{name}.cfg"
        init_config(lang="en", pipeline=pipeline).to_disk(made.configs[name])
    converted = root / "converted"
    for conllu in (TRAIN, DEV):
        convert(conllu, converted, file_type="spacy", n_sents=10, converter="conllu")
    for split, iob2 in (("train", UNER / "en_ewt-ud-train.approx.sample.iob2"), ("dev", UNER / "en_ewt-ud-dev.sample.iob2")):
        (root / f"uner-{split}.iob").write_text(_iob_lines(iob2), encoding="utf8")
        convert(root / f"uner-{split}.iob", converted, file_type="spacy", n_sents=10, converter="iob")
    ud = {"train": converted / f"{TRAIN.stem}.spacy", "dev": converted / f"{DEV.stem}.spacy"}
    uner = {split: converted / f"uner-{split}.spacy" for split in ("train", "dev")}
    made.corpora["ud"] = ud
    made.corpora["uner"] = uner
    # parser and NER from one corpus: CoNLL-U docs (no entities) and IOB docs (no trees), interleaved
    made.corpora["parser_ner"] = {
        split: _save([d for pair in zip(_docs(uner[split])[:n], _docs(ud[split])[:n]) for d in pair], root / f"pn-{split}.spacy")
        for split, n in (("train", 6), ("dev", 2))
    }
    nlp = spacy.blank("en")
    made.corpora["textcat"] = {}
    for split, name in (("train", "TREC.train.sample"), ("dev", "TREC.test.sample")):
        lines = [line.split(" ", 1) for line in (TREC / name).read_text(encoding="latin-1").splitlines()]
        labels = sorted({label.split(":")[0] for label, _ in lines})
        docs = []
        for label, text in lines:
            doc = nlp.make_doc(text)
            doc.cats = {cat: float(cat == label.split(":")[0]) for cat in labels}
            docs.append(doc)
        made.corpora["textcat"][split] = _save(docs, root / f"trec-{split}.spacy")
    return made


def _cli(*args: str) -> Tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


# ------------------------------------------------------------------ the reader


def test_conllu_docbin_reads_as_the_conllu_reader(project):
    """gold_preproc: one example per sentence, the same words, tags and trees as
    archsweep's own CoNLL-U reader (spaCy's `tag_` is XPOS, `pos_` UPOS)."""
    from search.corpora.docbin import read_docbin

    from_docbin = read_docbin(project.corpora["ud"]["dev"], gold_preproc=True)
    from_conllu = read_conllu(DEV)
    assert len(from_docbin) == len(from_conllu) > 100
    for ours, theirs in zip(from_docbin, from_conllu):
        assert ours.doc.words == theirs.doc.words
        assert (ours.doc.features == theirs.doc.features).all()
        for key in ("upos", "xpos", "heads"):
            assert ours.gold[key] == theirs.gold[key], (key, theirs.source)
        assert [d.lower() for d in ours.gold["deps"]] == [d.lower() for d in theirs.gold["deps"]]  # root -> ROOT
    docs = read_docbin(project.corpora["ud"]["dev"])  # spaCy's default: whole docs of 10 sentences
    assert len(docs) == 20 and sum(len(d) for d in docs) == sum(len(e) for e in from_conllu)
    assert sum(docs[0].gold["sent_starts"]) == 10


def test_iob_docbin_gives_the_iob2_readers_biluo_and_spans(project):
    from search.corpora.docbin import read_docbin

    ours = read_docbin(project.corpora["uner"]["dev"], gold_preproc=True)
    theirs = read_iob2(UNER / "en_ewt-ud-dev.sample.iob2")
    assert len(ours) == len(theirs)
    assert [e.gold["ner"] for e in ours] == [e.gold["ner"] for e in theirs]
    assert [e.gold["entities"] for e in ours] == [e.gold["entities"] for e in theirs]
    assert any(e.gold["entities"] for e in ours)


def test_missing_entity_annotation_is_none_as_in_spacy(tmp_path):
    """A token whose ent_iob_ is empty is missing (None), O is outside; a doc without
    entity annotation has no "ner" gold at all."""
    from spacy.tokens import Span

    from search.corpora.docbin import read_docbin

    nlp = spacy.blank("en")
    annotated = nlp.make_doc("Ada Lovelace met Charles Babbage in London")
    annotated.set_ents([Span(annotated, 0, 2, "PER")], missing=[annotated[3:5]], default="outside")
    plain = nlp.make_doc("no entities here")
    [eg, bare] = read_docbin(_save([annotated, plain], tmp_path / "ents.spacy"))
    assert eg.gold["ner"] == ["B-PER", "L-PER", "O", None, None, "O", "O"]
    assert eg.gold["entities"] == [(0, 2, "PER")]
    assert "ner" not in bare.gold and "entities" not in bare.gold


def test_cats_are_read_and_not_exhaustive(project):
    from search.corpora.docbin import read_docbin

    examples = read_docbin(project.corpora["textcat"]["dev"], limit=3)
    assert len(examples) == 3
    assert sum(examples[0].gold["cats"].values()) == 1.0 and len(examples[0].gold["cats"]) == 6
    assert examples[0].gold["cats_exhaustive"] is False


def test_not_a_docbin_names_the_file(tmp_path):
    from search.corpora.docbin import read_docbin
    from search.corpora.example import CorpusError

    bad = tmp_path / "train.spacy"
    bad.write_text("not a DocBin", encoding="utf8")
    with pytest.raises(CorpusError, match=f"{bad}: expected a spaCy DocBin"):
        read_docbin(bad)


def test_without_spacy_reading_a_docbin_says_to_install_the_extra(project, monkeypatch):
    """With spaCy not importable (None in sys.modules: Python's own "not installed")."""
    from search.corpora.docbin import read_docbin
    from search.corpora.example import CorpusError

    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(CorpusError) as err:
        read_docbin(project.corpora["ud"]["dev"])
    assert str(err.value) == "reading .spacy corpora needs spaCy: pip install 'archsweep[spacy]'"


# ------------------------------------------------------------------ configs


def test_tagger_config_trains_with_the_ignored_settings_listed_once(project, tmp_path, caplog):
    out = tmp_path / "run"
    code, output = _cli(
        "train", str(project.configs["tagger"]), *project.paths("ud"), "--output", str(out),
        "--training.max_steps=6", "--training.eval_frequency=3", "--corpora.train.limit=10", "--corpora.dev.limit=2",
    )
    assert code == 0, output
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert "nlp.lang" in warnings[0] and "components.tagger.label_smoothing" in warnings[0]
    assert "rows" not in warnings[0]  # spaCy's [5000, 1000, 2500, 2500]: its Tok2Vec.v2 as it is
    assert "tag_acc" in output
    saved = load_config(out / "model-best" / "config.cfg")  # archsweep's own config now: no warning
    assert saved["components"]["tagger"]["label_attr"] == "xpos"
    assert saved["components"]["tok2vec"]["model"]["embed"]["rows"] == [5000, 1000, 2500, 2500]
    assert len([r for r in caplog.records if r.getMessage().startswith("warning:")]) == 1
    code, output = _cli("evaluate", str(out), str(project.corpora["ud"]["dev"]))
    assert code == 0, output
    assert "tag_acc" in output and "words_per_second" in output


def test_the_mapping_of_a_parser_and_ner_config(project):
    config = load_config(project.configs["parser_ner"], {"paths.train": "t.spacy", "paths.dev": "d.spacy"})
    components = config["components"]
    assert config["nlp"]["pipeline"] == ["tok2vec", "parser", "ner"]
    # spaCy's tok2vec (subword tables of 1000 and 2500 rows) is kept as it is
    assert components["tok2vec"]["model"]["@architectures"] == "spacy.Tok2Vec.v2"
    assert components["tok2vec"]["model"]["encode"]["width"] == 96
    for name, tokens in (("parser", 8), ("ner", 3)):
        model = components[name]["model"]
        assert model["@architectures"] == "spacy.TransitionBasedParser.v1"
        assert model["nr_feature_tokens"] == tokens
        assert model["tok2vec"]["width"] == "${components.tok2vec.model.encode.width}"
    assert components["parser"]["min_action_freq"] == 30
    assert components["ner"]["label_order"] == "spacy"
    assert dict(config["training"]["score_weights"]) == {"dep_uas": 0.25, "dep_las": 0.25, "ents_f": 0.5}
    assert config["training"]["patience"] == 1600 and config["training"]["max_steps"] == 20000


def test_parser_and_ner_train_from_one_mixed_corpus(project):
    from search.training.loop import train

    rows: List = []
    overrides = {
        "paths.train": str(project.corpora["parser_ner"]["train"]), "paths.dev": str(project.corpora["parser_ner"]["dev"]),
        "training.max_steps": 4, "training.eval_frequency": 2, "components.parser.min_action_freq": 1,
    }
    result = train(project.configs["parser_ner"], None, overrides=overrides, on_evaluation=rows.append)
    assert result.stop_reason.startswith("max_steps")
    assert {"dep_las", "ents_f", "tag_acc"} & set(rows[-1].scores) == {"dep_las", "ents_f"}
    assert set(rows[-1].losses) == {"tok2vec", "parser", "ner"}


def test_textcat_config_trains_on_a_docbin(project):
    from search.training.loop import train

    rows: List = []
    overrides = {
        "paths.train": str(project.corpora["textcat"]["train"]), "paths.dev": str(project.corpora["textcat"]["dev"]),
        "training.max_steps": 6, "training.eval_frequency": 3, "corpora.dev.limit": 50,
    }
    train(project.configs["textcat"], None, overrides=overrides, on_evaluation=rows.append)
    assert rows[-1].score == rows[-1].scores["cats_macro_f"]  # spaCy's cats_score for exclusive classes
    assert rows[-1].scores["cats_acc"] > 0


def _spacy_config(project: Project, edit: Dict[str, object], tmp_path: Path, name: str = "tagger") -> Path:
    config = Config().from_disk(project.configs[name], interpolate=False)
    for dotted, value in edit.items():
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    path = tmp_path / "edited.cfg"
    config.to_disk(path)
    return path


def test_pos_tagger_when_the_score_weights_weigh_pos_acc(project, tmp_path):
    path = _spacy_config(project, {"training.score_weights.tag_acc": 0.0, "training.score_weights.pos_acc": 1.0}, tmp_path)
    assert load_config(path, {"paths.train": "t.spacy", "paths.dev": "d.spacy"})["components"]["tagger"]["label_attr"] == "upos"


BAD = {
    "unknown factory": (
        {"components.tagger.factory": "morphologizer"},
        "components.tagger.factory: archsweep has no 'morphologizer' component; expected one of: tok2vec, tagger",
    ),
    "entity linker": ({"components.tagger.factory": "entity_linker"}, "components.tagger.factory: 'entity_linker': spaCy's entity linker"),
    "sourced component": (
        {"components.tagger.factory": None, "components.tagger.source": "en_core_web_sm"},
        "components.tagger.source: components sourced from a trained spaCy pipeline are not supported",
    ),
    "static vectors": (
        {"components.tok2vec.model.embed.include_static_vectors": True},
        "components.tok2vec.model.embed.include_static_vectors: static vectors from a spaCy vectors package",
    ),
    "unknown architecture": (
        {"components.tagger.model.@architectures": "spacy.Tagger.v9"},
        "components.tagger.model.@architectures: unknown architecture version 'spacy.Tagger.v9'",
    ),
    "embed attrs": (
        {"components.tok2vec.model.embed.attrs": ["NORM", "LEMMA", "SUFFIX", "SHAPE"]},
        "components.tok2vec.model.embed.attrs: expected token attributes of ORTH, LOWER, NORM, PREFIX, SUFFIX, SHAPE",
    ),
    "embed rows": (
        {"components.tok2vec.model.embed.attrs": ["ORTH", "SHAPE"]},
        "components.tok2vec.model.embed.rows: expected one row count per attribute (2), got [5000, 1000, 2500, 2500]",
    ),
    "state type": (
        {"components.parser.model.state_type": "tagger"},
        "components.parser.model.state_type: expected \"parser\" or \"ner\", got 'tagger'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_spacy_config_names_the_key(project, tmp_path, case):
    edit, message = BAD[case]
    name = "parser_ner" if case == "state type" else "tagger"
    with pytest.raises(ConfigError) as err:
        load_config(_spacy_config(project, edit, tmp_path, name), {"paths.train": "t.spacy", "paths.dev": "d.spacy"})
    assert str(err.value).startswith(message), str(err.value)


def test_a_bad_spacy_config_on_the_command_line_is_one_error_line(project, tmp_path):
    path = _spacy_config(project, {"components.tagger.factory": "morphologizer"}, tmp_path)
    code, output = _cli("train", str(path), *project.paths("ud"))
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and errors[0].startswith("error: components.tagger.factory:"), output
    code, output = _cli("train", str(project.configs["tagger"]), "--paths.trian=x.spacy")
    assert code == 1 and "error: --paths.trian: no such setting" in output


# ------------------------------------------------------------------ a starting space, swept


def test_a_starting_space_from_a_spacy_config_sweeps_end_to_end(project, tmp_path, caplog, ray_cluster, mlflow_server):
    """`archsweep space OUT --from CONFIG` on spaCy's tagger config, then a real sweep of
    it: two trials of six steps on ten docs, narrow models (every dimension still searched)."""
    from search.space import Space
    from search.sweep import SweepSettings, sweep

    space_path = tmp_path / "tagger-space.cfg"
    code, output = _cli("space", str(space_path), "--from", str(project.configs["tagger"]), *project.paths("ud"))
    assert code == 0, output
    assert len([r for r in caplog.records if r.getMessage().startswith("warning:")]) == 1
    space = Space.from_disk(space_path)
    dims = {d.name: d for d in space.dimensions}
    t2v = "components.tok2vec.model.encode"  # spaCy's Tok2Vec.v2: the encoder holds width and depth
    assert set(dims) == {
        f"{t2v}.width", f"{t2v}.depth", f"{t2v}.window_size", f"{t2v}.maxout_pieces",
        "training.optimizer.learn_rate", "training.dropout", "training.batcher.size.start", "training.batcher.size.stop",
    }
    assert dims["training.optimizer.learn_rate"].describe() == "log-uniform [0.0001, 0.01]"
    assert dims[f"{t2v}.depth"].distribution.default == 4  # the config's own value
    overrides = {
        "training.max_steps": 6, "training.eval_frequency": 3, "corpora.train.limit": 10, "corpora.dev.limit": 2,
        f"{t2v}.width.values": [32, 64], f"{t2v}.width.default": 32,
        f"{t2v}.depth.high": 3, f"{t2v}.depth.default": 2,
    }
    settings = SweepSettings(
        space_path=str(space_path), num_samples=2, max_concurrent=2, address=ray_cluster.address,
        tracking_uri=mlflow_server.uri, experiment="e2e-spacy-tagger", storage=str(tmp_path / "sweeps"),
        seed=0, search="tpe", scheduler="asha", grace_period=1, overrides=overrides,
    )
    result = sweep(settings)
    assert len(result.trials) == 2
    assert {t.status for t in result.trials} <= {"finished", "pruned"}, [(t.status, t.error) for t in result.trials]
    assert result.best_config_path is not None
    best = load_config(result.best_config_path).interpolate()
    assert best["corpora"]["train"]["@readers"] == "spacy.Corpus.v1"
    # the embedding and the listener follow the searched encoder width through their ${references}
    tok2vec = best["components"]["tok2vec"]["model"]
    assert best["components"]["tagger"]["model"]["tok2vec"]["width"] == tok2vec["embed"]["width"] == tok2vec["encode"]["width"]
    assert tok2vec["encode"]["width"] in (32, 64)


def test_settings_that_change_what_spacy_does_are_listed_and_no_ops_are_not(project):
    from search.training.spacy_config import from_spacy_config

    config = Config().from_disk(project.configs["tagger"], interpolate=False)
    assert from_spacy_config(config).ignored == ["nlp.lang", "components.tagger.label_smoothing"]
    config["training"]["logger"] = {"@loggers": "my_logger.v1"}
    config["training"]["accumulate_gradient"] = 2
    config["training"]["frozen_components"] = ["tok2vec"]
    config["components"]["tagger"]["label_smoothing"] = 0.0
    config["components"]["tok2vec"]["model"]["embed"]["rows"] = [4000, 2000, 2000, 2000]
    config["corpora"]["train"]["augmenter"] = {"@augmenters": "spacy.lower_case.v1", "level": 0.1}
    converted = from_spacy_config(config)
    assert sorted(converted.ignored) == [
        "corpora.train.augmenter", "nlp.lang", "training.accumulate_gradient", "training.frozen_components",
        "training.logger",
    ]
    assert converted.config["components"]["tok2vec"]["model"]["embed_size"] == 4000
    assert converted.warning() == "warning: spaCy settings archsweep does not use, ignored: " + ", ".join(converted.ignored)


def test_a_multilabel_textcat_keeps_its_threshold_and_scores_by_macro_auc(project, tmp_path):
    path = _spacy_config(project, {"components.textcat.factory": "textcat_multilabel", "components.textcat.threshold": 0.4,
                                   "components.textcat.model.exclusive_classes": False}, tmp_path, "textcat")
    config = load_config(path, {"paths.train": "t.spacy", "paths.dev": "d.spacy"})
    assert config["components"]["textcat"]["threshold"] == 0.4
    assert config["components"]["textcat"]["model"]["@architectures"] == "spacy.TextCatBOW.v1"
    assert dict(config["training"]["score_weights"]) == {"cats_macro_auc": 1.0}


def test_space_from_without_a_file_prints_the_space(project):
    """Overrides as separate words (`--paths.train FILE`) are overrides, not the file to write."""
    train, dev = project.corpora["textcat"]["train"], project.corpora["textcat"]["dev"]
    code, output = _cli("space", "--from", str(project.configs["textcat"]), "--paths.train", str(train), "--paths.dev", str(dev))
    assert code == 0, output
    space = Config().from_str(output[output.index("[paths]"):], interpolate=False)
    assert space["paths"]["train"] == str(train)
    assert space["components"]["textcat"]["model"]["ngram_size"] == {
        "@distributions": "int_uniform.v1", "low": 1, "high": 3, "default": 1,
    }
    assert space["training"]["optimizer"]["learn_rate"]["@distributions"] == "loguniform.v1"
