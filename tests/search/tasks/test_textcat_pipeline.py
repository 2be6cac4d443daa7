"""Text classification in search/: the tokenizer, the TSV/JSONL readers on the bundled
SST-2 / TREC / GoEmotions samples, the loss with missing labels, the scores, real
training of every architecture, evaluation of a saved model, and the textcat space."""

import json
from collections import Counter

import numpy
import pytest
from search_testing import REPO, run_cli

from search.corpora.example import CorpusError
from search.corpora.textcat import read_for_evaluation, read_textcat_jsonl, read_textcat_tsv, tokenize
from search.space import DefaultSuggester, RandomSuggester, Space
from search.tasks.textcat import exclusive_scores, multilabel_scores, roc_auc
from search.training.config import load_config
from search.training.evaluate import evaluate
from search.training.loop import train
from search.training.pipeline import build_component

DATA = REPO / "data" / "textcat"
SST_TRAIN, SST_DEV = DATA / "sst2" / "stsa.binary.train.sample", DATA / "sst2" / "stsa.binary.dev.sample"
TREC_TRAIN, TREC_DEV = DATA / "trec" / "TREC.train.sample", DATA / "trec" / "TREC.test.sample"
GO_TRAIN, GO_DEV = DATA / "goemotions" / "train.sample.tsv", DATA / "goemotions" / "dev.sample.tsv"
GO_NAMES = DATA / "goemotions" / "emotions.txt"
GLOVE = REPO / "data" / "vectors" / "glove.6B.50d.sample.txt"
CONFIGS = REPO / "configs"
SPACE = REPO / "spaces" / "textcat.cfg"
# absolute paths: the tests do not depend on the working directory
TREC_PATHS = {"paths.train": str(TREC_TRAIN), "paths.dev": str(TREC_DEV)}
GO_PATHS = {"paths.train": str(GO_TRAIN), "paths.dev": str(GO_DEV), "paths.labels": str(GO_NAMES)}
SST_PATHS = {"paths.train": str(SST_TRAIN), "paths.dev": str(SST_DEV)}


# ------------------------------------------------------------------ tokenizer


@pytest.mark.parametrize(
    "text,tokens",
    [
        ("they wo n't sit still , however", ["they", "wo", "n't", "sit", "still", ",", "however"]),
        ("I don't know, it's U.S. policy!!!", ["I", "do", "n't", "know", ",", "it", "'s", "U.S.", "policy", "!!!"]),
        ("[NAME] said 😂😂 see http://x.com/a?b=1.", ["[NAME]", "said", "😂😂", "see", "http://x.com/a?b=1", "."]),
        ("re-imagining ... 3.14 and 1,000 -- $5", ["re-imagining", "...", "3.14", "and", "1,000", "--", "$", "5"]),
        ("I’m sure it’s fine", ["I", "’m", "sure", "it", "’s", "fine"]),
        ("   ", []),
    ],
)
def test_tokenizer_rules(text, tokens):
    assert tokenize(text) == tokens


def test_pre_tokenized_text_is_kept():
    """SST-2 is PTB-tokenised already: the tokenizer keeps its tokens."""
    lines = SST_TRAIN.read_text(encoding="utf8").splitlines()
    same = sum(tokenize(line[2:]) == line[2:].split() for line in lines)
    assert same / len(lines) > 0.99


# ------------------------------------------------------------------ readers


def test_sst2_reader():
    examples = read_textcat_tsv(SST_TRAIN, separator=" ")
    assert len(examples) == 400
    assert Counter(next(iter(eg.gold["cats"])) for eg in examples) == {"0": 201, "1": 199}
    first = examples[0]
    assert first.gold == {"cats": {"1": 1.0}, "cats_exhaustive": True}
    assert first.doc.words[:3] == ["a", "stirring", ","]
    assert first.source == f"{SST_TRAIN}:1"


def test_trec_reader_detects_latin1_and_takes_coarse_labels(caplog):
    with pytest.raises(CorpusError, match=r"TREC.train.sample:\d+: not valid utf8 .*encoding"):
        read_textcat_tsv(TREC_TRAIN, separator=" ", label_part_separator=":")
    examples = read_textcat_tsv(TREC_TRAIN, separator=" ", label_part_separator=":", encoding="auto")
    assert "reading the file as Latin-1" in caplog.text
    assert {l for eg in examples for l in eg.gold["cats"]} == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    sister = [eg for eg in examples if "sister\xa0city" in " ".join(eg.doc.words) or "sister" in eg.doc.words]
    assert sister, "the Latin-1 line (a non-breaking space) was read"
    explicit = read_textcat_tsv(TREC_TRAIN, separator=" ", label_part_separator=":", encoding="latin-1")
    assert [eg.doc.words for eg in explicit] == [eg.doc.words for eg in examples]
    fine = read_textcat_tsv(TREC_DEV, separator=" ", label_part_separator=":", label_part=1, limit=3)
    assert [next(iter(eg.gold["cats"])) for eg in fine] == ["dist", "desc", "date"]


def test_goemotions_reader_maps_ids_to_names():
    examples = read_textcat_tsv(
        GO_TRAIN, text_column=0, label_column=1, multi_label_separator=",", label_names=GO_NAMES
    )
    assert len(examples) == 400
    names = GO_NAMES.read_text().split()
    assert {l for eg in examples for l in eg.gold["cats"]} <= set(names)
    assert any(len(eg.gold["cats"]) > 1 for eg in examples)
    assert examples[0].gold["cats"] == {"neutral": 1.0}  # id 27
    assert examples[0].doc.words[:3] == ["My", "favourite", "food"]


@pytest.mark.parametrize(
    "line,kwargs,message",
    [
        ("nolabel", {"separator": " "}, r"bad.tsv:2: expected at least 2 columns separated by ' '"),
        ("5\tsome text", {"label_names": "NAMES"}, r"bad.tsv:2: expected a label id 0-1 \(label_names\), found '5'"),
        ("DESC some text", {"separator": " ", "label_part_separator": ":", "label_part": 1}, r"bad.tsv:2: expected a label with part 1"),
        ("1\t  ", {}, r"bad.tsv:2: empty text"),
        ("\tsome text", {}, r"bad.tsv:2: empty label"),
    ],
)
def test_tsv_errors_name_file_and_line(tmp_path, line, kwargs, message):
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    path = tmp_path / "bad.tsv"
    first = "1 fine text" if kwargs.get("separator") == " " else "1\tfine text"
    if kwargs.get("label_part_separator"):
        first = "A:b fine text"
    path.write_text(first + "\n" + line + "\n", encoding="utf8")
    kwargs = {k: (names if v == "NAMES" else v) for k, v in kwargs.items()}
    with pytest.raises(CorpusError, match=message):
        read_textcat_tsv(path, **kwargs)


def test_jsonl_reader_forms_and_errors(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"text": "a fine film", "label": "POS"}),
                json.dumps({"text": "sad and happy", "label": ["sad", "happy"]}),
                json.dumps({"text": "not sure", "cats": {"POS": 0.0}}),
                "",
            ]
        ),
        encoding="utf8",
    )
    examples = read_textcat_jsonl(path)
    assert [eg.gold for eg in examples] == [
        {"cats": {"POS": 1.0}, "cats_exhaustive": True},
        {"cats": {"sad": 1.0, "happy": 1.0}, "cats_exhaustive": True},
        {"cats": {"POS": 0.0}, "cats_exhaustive": False},
    ]
    for bad, message in [
        ("{not json", r"x.jsonl:2: not valid JSON"),
        ('["a"]', r"x.jsonl:2: expected a JSON object"),
        ('{"label": "A"}', r"x.jsonl:2: expected a string under 'text'"),
        ('{"text": "t"}', r"x.jsonl:2: expected a 'label' or a 'cats' key"),
        ('{"text": "t", "cats": {"A": 2}}', r"x.jsonl:2: expected 'cats' to map labels to scores between 0 and 1"),
        ('{"text": "t", "label": 3}', r"x.jsonl:2: expected 'label' to be a label or a list"),
    ]:
        path.write_text('{"text": "ok", "label": "A"}\n' + bad + "\n", encoding="utf8")
        with pytest.raises(CorpusError, match=message):
            read_textcat_jsonl(path)


# ------------------------------------------------------------------ loss and scores


def test_loss_masks_missing_labels(tmp_path):
    """Labels an example does not name are missing (zero gradient) unless its
    annotation is exhaustive; the loss is spaCy's (scores - truths) / n_docs."""
    path = tmp_path / "m.jsonl"
    path.write_text(
        json.dumps({"text": "good film", "cats": {"A": 1.0}}) + "\n"  # B, C missing
        + json.dumps({"text": "bad film", "label": "B"}) + "\n"  # A, C known negatives
        + json.dumps({"text": "so so", "cats": {"A": 0.0, "B": 0.0, "C": 1.0}}) + "\n",
        encoding="utf8",
    )
    examples = read_textcat_jsonl(path)
    model = {"@architectures": "spacy.TextCatBOW.v1", "exclusive_classes": False, "ngram_size": 1, "no_output_layer": False}
    textcat = build_component("textcat", {"factory": "textcat_multilabel", "model": model})
    textcat.initialize(examples)
    assert textcat.labels == ["A", "B", "C"]
    truths, known = textcat.truths(examples)
    numpy.testing.assert_array_equal(known, [[1, 0, 0], [1, 1, 1], [1, 1, 1]])
    numpy.testing.assert_array_equal(truths, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    scores = numpy.full((3, 3), 0.5, dtype="float32")
    loss, d = textcat.get_loss(examples, scores)
    expected = (scores - truths) / 3 * known
    numpy.testing.assert_allclose(d, expected)
    assert loss == pytest.approx(float((expected**2).sum()) / 3)



def test_truths_cached_per_example_equal_recomputed_and_loss_exact(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        json.dumps({"text": "good film", "cats": {"A": 1.0, "Z": 1.0}}) + "\n"  # Z: unseen in training
        + json.dumps({"text": "bad film", "label": "B"}) + "\n"
        + json.dumps({"text": "so so", "cats": {"A": 0.0, "B": 0.0, "C": 1.0}}) + "\n",
        encoding="utf8",
    )
    examples = read_textcat_jsonl(path)
    model = {"@architectures": "spacy.TextCatBOW.v1", "exclusive_classes": False, "ngram_size": 1, "no_output_layer": False}
    textcat = build_component("textcat", {"factory": "textcat_multilabel", "model": model})
    textcat.initialize(examples[1:])  # labels A, B, C (Z never seen)
    truths, known = textcat.truths(examples)
    numpy.testing.assert_array_equal(truths, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    numpy.testing.assert_array_equal(known, [[1, 0, 0], [1, 1, 1], [1, 1, 1]])
    assert all(eg.cache for eg in examples)  # cached on the examples ...
    rows = [textcat.example_truths(eg) for eg in examples]
    assert all(a is textcat.example_truths(eg) for a, eg in zip(rows, examples))  # ... and reused
    truths[0, 0] = 7.0  # the batch arrays are copies: the cache is not touched
    numpy.testing.assert_array_equal(textcat.truths(examples)[0][0], [1, 0, 0])
    # the loss stays a device (here numpy) scalar, equal to the former float computation
    scores = numpy.linspace(0.1, 0.9, 9, dtype="float32").reshape((3, 3))
    loss, d = textcat.get_loss(examples, scores)
    truths, known = textcat.truths(examples)
    expected = (scores - truths) / 3
    expected *= known
    numpy.testing.assert_array_equal(d, expected)
    assert isinstance(loss, (numpy.generic, numpy.ndarray)) and float(loss) == float((expected**2).sum()) / 3
    # new labels: cached rows are not reused
    textcat.set_labels(["C", "B", "A"])
    numpy.testing.assert_array_equal(textcat.truths(examples)[0], [[0, 0, 1], [0, 1, 0], [1, 0, 0]])


def test_roc_auc_matches_the_pairwise_definition():
    rng = numpy.random.default_rng(0)
    gold = rng.random(200) < 0.3
    scores = numpy.round(rng.random(200), 1)  # many ties
    pairs = [(p > n) + 0.5 * (p == n) for p in scores[gold] for n in scores[~gold]]
    assert roc_auc(gold, scores) == pytest.approx(numpy.mean(pairs))
    assert roc_auc(numpy.array([True, True]), numpy.array([0.1, 0.2])) is None
    assert roc_auc(numpy.array([False, True]), numpy.array([0.1, 0.9])) == 1.0


def test_exclusive_scores():
    truths = numpy.eye(3, dtype="float32")[[0, 0, 1, 2]]
    known = numpy.ones_like(truths)
    scores = numpy.eye(3, dtype="float32")[[0, 1, 1, 1]]
    result = exclusive_scores(truths, known, scores, ["a", "b", "c"], per_label=True)
    assert result["cats_acc"] == 0.5
    # a: P 1 R .5 F .667; b: P 1/3 R 1 F .5; c: F 0
    assert result["cats_f_a"] == pytest.approx(2 / 3) and result["cats_f_b"] == pytest.approx(0.5)
    assert result["cats_macro_f"] == pytest.approx((2 / 3 + 0.5) / 3)


def test_multilabel_scores_skip_missing_labels():
    truths = numpy.array([[1, 0], [1, 1], [0, 0]], dtype="float32")
    known = numpy.array([[1, 1], [1, 0], [1, 1]], dtype="float32")  # (1, b) missing
    scores = numpy.array([[0.9, 0.8], [0.2, 0.9], [0.1, 0.1]], dtype="float32")
    r = multilabel_scores(truths, known, scores, ["a", "b"], per_label=True)
    # a: tp 1 fn 1 -> P 1 R .5; b (rows 0, 2): fp 1 -> P 0 R 0 (no positives)
    assert (r["cats_micro_p"], r["cats_micro_r"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert r["cats_f_a"] == pytest.approx(2 / 3) and r["cats_f_b"] == 0.0
    assert r["cats_auc_a"] == 1.0 and r["cats_auc_b"] == 0.0  # b: only negatives known -> undefined
    assert r["cats_macro_auc"] == 1.0  # averaged over labels with both classes


# ------------------------------------------------------------------ training every architecture (real data)

BOW = {"@architectures": "spacy.TextCatBOW.v1", "exclusive_classes": True, "ngram_size": 2, "no_output_layer": False, "nO": None}
CNN = {
    "@architectures": "spacy.TextCatCNN.v1",
    "exclusive_classes": True,
    "nO": None,
    "tok2vec": {
        "@architectures": "spacy.HashEmbedCNN.v1",
        "width": 64, "depth": 2, "embed_size": 2000, "window_size": 1, "maxout_pieces": 3,
        "subword_features": True, "pretrained_vectors": str(GLOVE),
    },
}
LOWDATA = {"@architectures": "spacy.TextCatLowData.v1", "width": 64, "pretrained_vectors": str(GLOVE), "dropout": 0.1, "nO": None}


def _with_model(config_path, model, overrides):
    config = load_config(config_path, overrides)
    if model is not None:
        config["components"]["textcat"]["model"] = model
    return config


@pytest.mark.parametrize("which", ["bow", "cnn", "ensemble", "lowdata"])
def test_each_architecture_trains_on_trec(which):
    model = {"bow": BOW, "cnn": CNN, "ensemble": None, "lowdata": LOWDATA}[which]
    config = _with_model(CONFIGS / "textcat_trec.cfg", model, {**TREC_PATHS, "training.max_epochs": 0, "training.max_steps": 30, "training.eval_frequency": 15})
    result = train(config)
    assert [h.step for h in result.history] == [15, 30]
    assert set(result.final_scores) == {"cats_acc", "cats_macro_f", "cats_macro_p", "cats_macro_r"}
    assert 0.0 <= result.best_score <= 1.0
    assert all(h.losses["textcat"] > 0 for h in result.history)


def test_bow_learns_trec_beyond_the_majority_class():
    config = _with_model(CONFIGS / "textcat_trec.cfg", BOW, {**TREC_PATHS, "training.max_epochs": 6, "training.eval_frequency": 1000})
    result = train(config)
    gold = Counter(next(iter(eg.gold["cats"])) for eg in read_textcat_tsv(TREC_DEV, separator=" ", label_part_separator=":"))
    majority = gold.most_common(1)[0][1] / sum(gold.values())
    assert result.final_scores["cats_acc"] > majority + 0.15, (result.final_scores, majority)


def test_goemotions_multilabel_trains_and_saves(tmp_path):
    out = tmp_path / "go"
    overrides = {**GO_PATHS, "training.max_epochs": 0, "training.max_steps": 6, "training.eval_frequency": 3,
                 "components.textcat.per_label_scores": True,
                 "components.textcat.model.width": 32, "components.textcat.model.embed_size": 500}
    result = train(CONFIGS / "textcat_goemotions.cfg", out, overrides=overrides)
    scores = result.final_scores
    for key in ("cats_micro_f", "cats_macro_f", "cats_macro_auc", "cats_auc_neutral", "cats_f_neutral"):
        assert 0.0 <= scores[key] <= 1.0, key
    assert result.best_score == max(h.scores["cats_macro_f"] for h in result.history)  # the configured primary score
    # evaluate reads the saved model's own corpus format (GoEmotions TSV with label names)
    again = evaluate(out / "model-last", GO_DEV)
    assert again["cats_macro_auc"] == pytest.approx(scores["cats_macro_auc"])
    assert again["words_per_second"] > 0


def test_sst2_evaluate_cli_on_its_format_and_on_jsonl(tmp_path):
    out = tmp_path / "sst"
    config = _with_model(CONFIGS / "textcat_sst2.cfg", BOW, {**SST_PATHS, "training.max_epochs": 2, "training.eval_frequency": 1000})
    result = train(config, out)
    scores = evaluate(out / "model-best", SST_DEV)
    assert scores["cats_acc"] == pytest.approx(result.best_scores["cats_acc"])
    jsonl = tmp_path / "dev.jsonl"
    lines = SST_DEV.read_text(encoding="utf8").splitlines()
    jsonl.write_text("".join(json.dumps({"text": l[2:], "label": l[0]}) + "\n" for l in lines), encoding="utf8")
    assert evaluate(out / "model-best", jsonl)["cats_acc"] == pytest.approx(scores["cats_acc"])
    proc = run_cli("evaluate", str(out / "model-best"), str(jsonl))
    assert proc.returncode == 0, proc.stderr
    assert "cats_acc" in proc.stdout
    assert read_for_evaluation(REPO / "x.conllu", None) is None


def test_cli_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 fine\nnolabel\n", encoding="utf8")
    proc = run_cli("train", str(CONFIGS / "textcat_sst2.cfg"), "--paths.train", str(bad), "--paths.dev", str(SST_DEV))
    assert proc.returncode == 1
    assert f"{bad}:2: expected at least 2 columns" in proc.stderr


# ------------------------------------------------------------------ the conditional space


def test_textcat_space_is_conditional_on_the_architecture():
    space = Space.from_disk(SPACE)
    space.validate()  # every option filled with its defaults builds a valid config
    arch_dim = "components.textcat.model"
    options = {"bow", "cnn", "ensemble", "lowdata"}
    by_option = {d.name.split(".")[3]: [] for d in space.dimensions if d.condition}
    for d in space.dimensions:
        if d.condition:
            assert d.condition[0] == arch_dim
            by_option[d.condition[1]].append(d.name)
    assert set(by_option) == options
    seen = set()
    for seed in range(12):
        config, values = space.sample(RandomSuggester(seed))
        option = values[arch_dim]
        seen.add(option)
        assert all(k.startswith(f"{arch_dim}.{option}.") for k in values if k.startswith(arch_dim + "."))
        assert "@distributions" not in config.to_str()
    assert seen == options


@pytest.mark.parametrize("option", ["bow", "cnn", "ensemble", "lowdata"])
def test_each_option_of_the_space_trains(option):
    space = Space.from_disk(SPACE, {**TREC_PATHS, "paths.vectors": str(GLOVE)})
    config, values = space.sample(DefaultSuggester(space, {"components.textcat.model": option}))
    result = train(config, overrides={"training.max_epochs": 0, "training.max_steps": 4, "training.eval_frequency": 4})
    assert result.stop_reason == "max_steps 4 reached" and 0.0 <= result.best_score <= 1.0
