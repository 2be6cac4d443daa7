"""The entity-linking knowledge base: built from the bundled real sample (Wiki-Fair v2 and
OKE-2016, data/entity_linking), saved and loaded, candidate lookup; the ELEVANT reader's
file:line errors."""

import json

import numpy
import pytest
from search_testing import REPO, run_cli

from search.corpora.entity_linker import NIL, read_elevant, read_elevant_docs
from search.corpora.example import CorpusError
from search.tasks.entity_linker.kb import KnowledgeBase, build_kb

EL = REPO / "data" / "entity_linking"
TRAIN = [EL / "wiki-fair-v2-train.sample.jsonl", EL / "oke-2016-train.sample.jsonl"]
EVAL = [EL / "wiki-fair-v2-test.sample.jsonl", EL / "oke-2016-eval.sample.jsonl"]
GLOVE = EL / "glove.6B.50d.kb-sample.txt"
TYPES = EL / "whitelist_types.tsv"


@pytest.fixture(scope="module")
def kb():
    return build_kb(TRAIN, entities=EVAL, vectors=str(GLOVE), types=TYPES)


def test_build_gives_the_committed_sample_kb(kb, tmp_path):
    """The committed data/entity_linking/kb.sample is what `kb build` makes from the sample."""
    kb.to_disk(tmp_path / "kb")
    assert json.loads((tmp_path / "kb" / "kb.json").read_text()) == json.loads((EL / "kb.sample" / "kb.json").read_text())
    numpy.testing.assert_array_equal(
        numpy.load(tmp_path / "kb" / "entity_vectors.npy"), numpy.load(EL / "kb.sample" / "entity_vectors.npy")
    )


def test_entities_aliases_priors(kb):
    gold = {l.kb_id for path in TRAIN + EVAL for d in read_elevant_docs(path) for l in d.labels if l.kb_id != NIL}
    assert {e["id"] for e in kb.entities} == gold  # closed world: every entity of the files
    assert kb.entity_vector_length == 50
    train_ids = {l.kb_id for path in TRAIN for d in read_elevant_docs(path) for l in d.labels}
    for e in kb.entities:
        assert (e["freq"] > 0) == (e["id"] in train_ids)  # counts come from training files only
    for alias, cands in kb.aliases.items():
        priors = [c.prior for c in cands]
        assert abs(sum(priors) - 1.0) < 1e-5 and priors == sorted(priors, reverse=True)
    assert sum(len(c) > 1 for c in kb.aliases.values()) > 5  # some aliases are ambiguous
    # entity vectors: the mean GloVe vector of name + type names, so most are non-zero
    assert (numpy.abs(kb.vectors).sum(axis=1) > 0).mean() > 0.95


def test_candidates_exact_then_lowercase_then_singular(kb):
    person = next(e for e in kb.entities if "Q215627" in e["types"] and len(e["name"].split()) > 1 and len(e["name"].split()[-1]) > 2)
    surname = person["name"].split()[-1]
    assert person["id"] in [c.entity for c in kb.get_candidates(surname)]  # a person's last name is an alias
    assert [c.entity for c in kb.get_candidates(person["name"])][0] == person["id"]
    assert kb.get_candidates(person["name"].upper()) == kb.get_candidates(person["name"].lower())
    assert kb.get_candidates(person["name"].lower())[0].entity == person["id"]
    assert kb.get_candidates("no such alias xyzzy") == []
    noun = next(a for a in kb.aliases if a.islower() and a.isalpha() and len(a) > 4 and not a.endswith("s"))
    assert kb.get_candidates(noun + "s") == kb._lower[noun]


def test_save_load_roundtrip(kb, tmp_path):
    kb.to_disk(tmp_path / "kb")
    loaded = KnowledgeBase.from_disk(tmp_path / "kb")
    assert loaded.entities == kb.entities and loaded.encoder == kb.encoder
    numpy.testing.assert_array_equal(loaded.vectors, kb.vectors)
    for alias in list(kb.aliases)[:50]:
        assert [(c.entity, round(c.prior, 6)) for c in loaded.get_candidates(alias)] == [
            (c.entity, round(c.prior, 6)) for c in kb.get_candidates(alias)
        ]


def test_reduced_width(kb):
    small = kb.reduced(16)
    assert small.vectors.shape == (len(kb), 16) and small.entity_vector_length == 16
    assert kb.reduced(50) is kb
    zero = numpy.abs(kb.vectors).sum(axis=1) == 0
    assert (numpy.abs(small.vectors[zero]).sum(axis=1) == 0).all()
    with pytest.raises(ValueError, match="allow"):
        kb.reduced(64)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="kb.json is missing"):
        KnowledgeBase.from_disk(tmp_path)
    (tmp_path / "kb.json").write_text('{"format": "archsweep.kb.v1",\n oops}')
    numpy.save(tmp_path / "entity_vectors.npy", numpy.zeros((1, 4), dtype="float32"))
    with pytest.raises(ValueError, match=r"kb.json:2: not valid JSON"):
        KnowledgeBase.from_disk(tmp_path)


def test_reader_mentions_are_whole_tokens():
    examples = read_elevant(EL / "oke-2016-train.sample.jsonl")
    assert examples and all(eg.doc.mentions for eg in examples)
    for eg in examples:
        assert len(eg.doc.mentions) == len(eg.gold["kb_ids"])
        for m in eg.doc.mentions:
            assert "".join(eg.doc.words[m.start : m.end]) == m.text.replace(" ", "")


def test_reader_exclude_by_title(tmp_path):
    path = EL / "wiki-fair-v2-train.sample.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    (tmp_path / "one.jsonl").write_text(lines[0])
    n_all = len(read_elevant_docs(path))
    kept = read_elevant(path, exclude=tmp_path / "one.jsonl")
    assert {eg.source.split(":")[-1] for eg in kept} == {str(i) for i in range(2, n_all + 1)}


@pytest.mark.parametrize(
    "line,message",
    [
        ("{not json", r"bad.jsonl:2: not valid JSON"),
        ('{"text": "ab", "labels": [{"span": [0, 9], "entity_id": "Q1"}]}', r"bad.jsonl:2: label 0: expected an object with a span"),
        ('{"text": "ab", "labels": [{"span": [0, 2], "entity_id": "Paris"}]}', r"bad.jsonl:2: label 0: entity_id 'Paris' is not a Wikidata QID"),
        ('{"text": "ab", "labels": {}}', r"bad.jsonl:2: expected a list under 'labels'"),
    ],
)
def test_reader_errors_name_file_and_line(tmp_path, line, message):
    good = (EL / "oke-2016-eval.sample.jsonl").read_text().splitlines()[0]
    (tmp_path / "bad.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises(CorpusError, match=message):
        read_elevant_docs(tmp_path / "bad.jsonl")


def test_cli_kb_build(tmp_path):
    out = tmp_path / "kb"
    proc = run_cli(
        "kb", "build", str(out), "--train", str(TRAIN[1]), "--entities", str(EVAL[1]),
        "--vectors", str(GLOVE), "--types", str(TYPES),
    )
    assert proc.returncode == 0, proc.stderr
    assert "entities" in proc.stdout and "width 50" in proc.stdout
    assert len(KnowledgeBase.from_disk(out)) > 100
    (tmp_path / "bad.jsonl").write_text('{"text": "x", "labels": []}\n\n{"text": 3}\n')
    proc = run_cli("kb", "build", str(out), "--train", str(tmp_path / "bad.jsonl"), "--vectors", str(GLOVE))
    assert proc.returncode == 1 and f"{tmp_path / 'bad.jsonl'}:3: expected a str under 'text'" in proc.stderr
