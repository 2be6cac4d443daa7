"""An archsweep training config as a spaCy 3.8 training config (`spacy train` runs it).

archsweep's architectures carry spaCy's registered names, but its configs are its own:
its corpus readers, factory settings such as the tagger's `label_attr`, and a few
architecture parameters spaCy does not have. This module writes the spaCy config: the
same pipeline, the searched values in place, spaCy's `spacy.Corpus.v1` readers over
`.spacy` files, spaCy's factories and training settings. A setting spaCy has no
counterpart for is mapped to the architecture that computes the same function, left
out when it changes nothing spaCy trains or scores (noted in the config's header), or
refused with a `SpacyExportError` naming its dotted key. It writes text only: spaCy is
not needed to export.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from confection import Config

READER = "spacy.Corpus.v1"
# The batchers archsweep registers that spaCy has under the same name and arguments.
SPACY_BATCHERS = {"spacy.batch_by_words.v1"}
# The score names spaCy's scorers report, per factory.
SPACY_SCORES = {
    "tagger": {"tag_acc"},
    "parser": {"dep_uas", "dep_las", "dep_las_per_type", "sents_p", "sents_r", "sents_f"},
    "ner": {"ents_f", "ents_p", "ents_r", "ents_per_type"},
    "textcat": {
        "cats_score", "cats_micro_p", "cats_micro_r", "cats_micro_f", "cats_macro_p", "cats_macro_r",
        "cats_macro_f", "cats_macro_auc", "cats_f_per_type", "cats_auc_per_type",
    },
}
SPACY_SCORES["textcat_multilabel"] = SPACY_SCORES["textcat"]
# nr_feature_tokens of TransitionBasedParser.v1 -> spaCy's (state_type, extra_state_tokens)
STATE_TYPES = {("parser", 8): False, ("parser", 13): True, ("ner", 3): False, ("ner", 6): True}


class SpacyExportError(ValueError):
    """A setting with no spaCy counterpart; the message names its dotted key."""


@dataclass
class SpacyExportOptions:
    """What the spaCy config needs beyond archsweep's config.
    train, dev: `.spacy` files (DocBin) for [paths]; None leaves them null, to be given
        as `spacy train ... --paths.train PATH --paths.dev PATH`.
    vectors: a spaCy vectors directory (`archsweep spacy-vectors`) for models with static vectors.
    lang: the spaCy language code of [nlp] lang (its tokenizer and lexical attributes).
    omit_fixed_dropout: leave out the architectures' own dropout rates (HashEmbedCNN's and
        HashCharEmbedCNN's `dropout`, TextCatEnsemble's `dropout`), which spaCy's
        architectures do not have, instead of refusing the export."""

    train: Optional[str] = None
    dev: Optional[str] = None
    vectors: Optional[str] = None
    lang: str = "en"
    omit_fixed_dropout: bool = False


@dataclass
class SpacyExport:
    """The spaCy config and what the export changed on the way (one line each)."""

    config: Config
    notes: List[str] = field(default_factory=list)

    def to_str(self, header: str = "") -> str:
        """The config file's text: `header` (comment lines), how to train it, the notes, the config."""
        paths = " ".join(
            f"--paths.{key} {placeholder}"
            for key, placeholder in (("train", "TRAIN.spacy"), ("dev", "DEV.spacy"))
            if self.config["paths"][key] is None
        )
        lines = header.splitlines() + [
            "# A spaCy 3.8 training config: python -m spacy train THIS_FILE" + (f" {paths}" if paths else "")
        ]
        lines += [f"# {note}" for note in self.notes]
        return "\n".join(lines + [self.config.to_str(), ""])


def to_spacy_config(config: Config, options: SpacyExportOptions = SpacyExportOptions()) -> SpacyExport:
    """spaCy 3.8's training config for a filled archsweep config (as `archsweep export`
    writes it, or `load_config` returns it). Raises SpacyExportError for a setting that
    has no spaCy counterpart."""
    C = Config(config).interpolate()
    notes: List[str] = []
    pipeline: List[str] = list(C["nlp"]["pipeline"])
    training = C["training"]
    uses_vectors: List[str] = []
    components = {
        name: _component(name, C["components"][name], options, notes, uses_vectors) for name in pipeline
    }
    _check_one_tagged_attribute(C, pipeline)
    if uses_vectors and not options.vectors:
        raise SpacyExportError(
            f"{uses_vectors[0]}: spaCy reads static vectors from a spaCy vectors directory; make one with "
            "`archsweep spacy-vectors VECTORS DIR` and give it with --spacy-vectors DIR"
        )
    spacy_config: Dict[str, Any] = {
        "paths": {"train": options.train, "dev": options.dev, "vectors": options.vectors, "init_tok2vec": None},
        "system": {"seed": C.get("system", {}).get("seed", training["seed"]),
                   "gpu_allocator": C.get("system", {}).get("gpu_allocator")},
        "nlp": {
            "lang": options.lang,
            "pipeline": pipeline,
            "batch_size": C["nlp"].get("batch_size", 1000),
            "tokenizer": {"@tokenizers": "spacy.Tokenizer.v1"},
        },
        "components": components,
        "corpora": {
            split: _corpus(f"corpora.{split}", C["corpora"].get(split, {}), f"${{paths.{split}}}", notes)
            for split in ("train", "dev")
        },
        "training": _training(C, components, notes),
        "initialize": {"vectors": "${paths.vectors}", "init_tok2vec": "${paths.init_tok2vec}"},
    }
    return SpacyExport(Config(spacy_config), notes)


def _component(
    name: str, block: Dict[str, Any], options: SpacyExportOptions, notes: List[str], uses_vectors: List[str]
) -> Dict[str, Any]:
    where = f"components.{name}"
    factory = block.get("factory")
    if factory == "entity_linker":
        raise SpacyExportError(
            f"{where}: the entity linker is not exported: spaCy's entity_linker needs a knowledge base built "
            "with spaCy (its own KB format and entity vectors), and its candidate generation differs"
        )
    if factory == "transformer":
        raise SpacyExportError(f"{where}: transformer pipelines are not exported (spaCy needs spacy-transformers for them)")
    if factory not in ("tagger", "parser", "ner", "textcat", "textcat_multilabel", "tok2vec"):
        raise SpacyExportError(f"{where}.factory: no spaCy counterpart for factory {factory!r}")
    settings = {k: v for k, v in block.items() if k not in ("factory", "model")}
    model = _model(f"{where}.model", block["model"], factory, options, notes, uses_vectors)
    if factory == "tagger":
        attr = settings.pop("label_attr", "upos")
        if attr == "upos":
            notes.append(
                f"{where}: spaCy's tagger learns Token.tag_; for this UPOS tagger the .spacy files must hold "
                "UPOS as the tag (copy the UPOS column into XPOS before `spacy convert`)"
            )
        return {"factory": "tagger", "overwrite": False, "neg_prefix": "!", "label_smoothing": 0.0, "model": model}
    if factory == "parser":
        return {
            "factory": "parser",
            "learn_tokens": False,
            "min_action_freq": settings.get("min_action_freq", 30),
            "moves": None,
            "update_with_oracle_cut_size": settings.get("update_with_oracle_cut_size", 100),
            "model": model,
        }
    if factory == "ner":
        if settings.get("label_order", "first_seen") != "spacy":
            notes.append(f"{where}.label_order: spaCy orders the entity labels its own way (the same actions)")
        return {
            "factory": "ner",
            "moves": None,
            "update_with_oracle_cut_size": settings.get("update_with_oracle_cut_size", 100),
            "incorrect_spans_key": None,
            "model": model,
        }
    if factory == "textcat":
        return {"factory": "textcat", "threshold": 0.0, "model": model}
    if factory == "textcat_multilabel":
        return {"factory": "textcat_multilabel", "threshold": settings.get("threshold", 0.5), "model": model}
    return {"factory": "tok2vec", "model": model}


def _model(
    where: str, block: Dict[str, Any], factory: Optional[str], options: SpacyExportOptions,
    notes: List[str], uses_vectors: List[str],
) -> Dict[str, Any]:
    name = block.get("@architectures")
    args = {k: v for k, v in block.items() if k != "@architectures"}
    if "tok2vec" in args:
        args["tok2vec"] = _model(f"{where}.tok2vec", args["tok2vec"], factory, options, notes, uses_vectors)
    if name == "spacy.HashEmbedCNN.v1":
        _fixed_dropout(where, args, options, notes, f"spaCy's {name} has no dropout of its own")
        args["pretrained_vectors"] = _vectors(where, args.get("pretrained_vectors"), uses_vectors)
        return {"@architectures": name, **args}
    if name == "spacy.HashCharEmbedCNN.v1":
        _fixed_dropout(where, args, options, notes, "spaCy's character embedding has no dropout of its own")
        if args.get("pretrained_vectors"):
            raise SpacyExportError(f"{where}.pretrained_vectors: character embeddings take no static vectors (expected null)")
        notes.append(
            f"{where}: spacy.HashCharEmbedCNN.v1 is written as spaCy's spacy.Tok2Vec.v2 of spacy.CharacterEmbed.v2 "
            "(NORM) and spacy.MaxoutWindowEncoder.v2: the same layers and parameters"
        )
        return {
            "@architectures": "spacy.Tok2Vec.v2",
            "embed": {
                "@architectures": "spacy.CharacterEmbed.v2", "width": args["width"], "rows": args["embed_size"],
                "nM": args["nM"], "nC": args["nC"], "include_static_vectors": False, "feature": "NORM",
            },
            "encode": {
                "@architectures": "spacy.MaxoutWindowEncoder.v2", "width": args["width"], "depth": args["depth"],
                "window_size": args["window_size"], "maxout_pieces": args["maxout_pieces"],
            },
        }
    if name == "spacy.Tok2Vec.v2":
        for part in ("embed", "encode"):
            args[part] = _model(f"{where}.{part}", args[part], factory, options, notes, uses_vectors)
        return {"@architectures": name, **args}
    if name in ("spacy.MultiHashEmbed.v2", "spacy.MaxoutWindowEncoder.v2"):
        return {"@architectures": name, **args}
    if name == "spacy.HashCharEmbedBiLSTM.v1":
        raise SpacyExportError(
            f"{where}: spacy.HashCharEmbedBiLSTM.v1 has no spaCy counterpart (spaCy's BiLSTM encoder, "
            "spacy.TorchBiLSTMEncoder.v1, runs in PyTorch with other parameters)"
        )
    if name == "spacy.Tok2VecListener.v1":
        if args.get("grad_factor", 1.0) != 1.0:
            raise SpacyExportError(
                f"{where}.grad_factor: spaCy's spacy.Tok2VecListener.v1 always passes the full gradient "
                f"(expected 1.0, got {args['grad_factor']})"
            )
        return {"@architectures": name, "width": args["width"], "upstream": args.get("upstream", "*")}
    if name == "spacy.Tagger.v1":
        return {"@architectures": name, **args}
    if name == "spacy.TransitionBasedParser.v1":
        nF = args.pop("nr_feature_tokens")
        state = "ner" if factory == "ner" else "parser"
        if (state, nF) not in STATE_TYPES:
            expected = " or ".join(str(n) for (s, n) in STATE_TYPES if s == state)
            raise SpacyExportError(
                f"{where}.nr_feature_tokens: spaCy's {state} describes a state by {expected} tokens "
                f"(state_type {state!r}, extra_state_tokens false or true), got {nF}"
            )
        if args.get("maxout_pieces") == 1 and args.get("use_upper", True):
            raise SpacyExportError(
                f"{where}.maxout_pieces: spaCy 3.8 trains a 1-piece hidden layer under an upper layer with relu "
                "but predicts with it linear, so the model it trains is not the one it evaluates (expected 2-4, "
                "or use_upper = false)"
            )
        # v1 keeps the lower layer's first number of actions when there is no upper layer; v2 is
        # the same model with that fixed (the one archsweep builds)
        version = "v1" if args.get("use_upper", True) else "v2"
        return {
            "@architectures": f"spacy.TransitionBasedParser.{version}",
            "state_type": state,
            "extra_state_tokens": STATE_TYPES[(state, nF)],
            **args,
        }
    if name in ("spacy.TextCatBOW.v1", "spacy.TextCatCNN.v1"):
        return {"@architectures": name, **args}
    if name == "spacy.TextCatEnsemble.v1":
        _fixed_dropout(
            where, args, options, notes,
            f"spaCy's {name} `dropout` adds dropout layers whose rate follows training.dropout (another model)",
        )
        args["dropout"] = None
        if args.get("pretrained_vectors"):
            raise SpacyExportError(
                f"{where}.pretrained_vectors: spaCy 3.8's spacy.TextCatEnsemble.v1 fails to initialize with static "
                "vectors (expected null)"
            )
        return {"@architectures": name, **args}
    if name == "spacy.TextCatLowData.v1":
        raise SpacyExportError(
            f"{where}: spacy.TextCatLowData.v1 cannot be trained in spaCy 3.8 (its model fails to initialize); "
            "choose another text classifier"
        )
    raise SpacyExportError(f"{where}: no spaCy counterpart for architecture {name!r}")


def _fixed_dropout(where: str, args: Dict[str, Any], options: SpacyExportOptions, notes: List[str], why: str) -> None:
    """Remove an architecture's own dropout rate, which spaCy's architecture lacks (`why`);
    a rate other than null/0 needs options.omit_fixed_dropout."""
    rate = args.pop("dropout", None)
    if not rate:
        return
    if not options.omit_fixed_dropout:
        raise SpacyExportError(
            f"{where}.dropout: {why} (expected null, got {rate}); export with --spacy-omit-fixed-dropout "
            "to leave it out (the same model, trained with training.dropout alone)"
        )
    notes.append(f"{where}.dropout = {rate} left out: {why}")


def _vectors(where: str, value: Any, uses_vectors: List[str]) -> Optional[bool]:
    if value is None or value is False:
        return None
    uses_vectors.append(f"{where}.pretrained_vectors")
    return True


def _check_one_tagged_attribute(C: Dict[str, Any], pipeline: List[str]) -> None:
    taggers = [n for n in pipeline if C["components"][n].get("factory") == "tagger"]
    attrs = {C["components"][n].get("label_attr", "upos") for n in taggers}
    if len(attrs) > 1:
        raise SpacyExportError(
            f"components.{taggers[1]}.label_attr: spaCy's taggers all learn Token.tag_, so one pipeline "
            f"cannot tag both UPOS and XPOS (taggers: {', '.join(taggers)})"
        )


def _corpus(where: str, block: Dict[str, Any], path: str, notes: List[str]) -> Dict[str, Any]:
    per_doc = block.get("sentences_per_doc", 1)
    if per_doc != 1:
        notes.append(f"{where}.sentences_per_doc = {per_doc}: convert with `spacy convert -n {per_doc}`")
    return {
        "@readers": READER,
        "path": path,
        "max_length": 0,
        "gold_preproc": True,
        # archsweep's limit counts sentences (texts); spaCy's counts docs: the same with
        # `spacy convert`'s default of one sentence per doc
        "limit": block.get("limit", 0),
        "augmenter": None,
    }


def _training(C: Dict[str, Any], components: Dict[str, Any], notes: List[str]) -> Dict[str, Any]:
    training = C["training"]
    batcher = dict(training["batcher"])
    if batcher.get("@batchers") not in SPACY_BATCHERS:
        raise SpacyExportError(f"training.batcher: no spaCy counterpart for batcher {batcher.get('@batchers')!r}")
    if training.get("max_seconds"):
        notes.append(f"training.max_seconds = {training['max_seconds']} left out: spaCy has no time limit")
    return {
        "dev_corpus": training.get("dev_corpus", "corpora.dev"),
        "train_corpus": training.get("train_corpus", "corpora.train"),
        "seed": "${system.seed}",
        "gpu_allocator": "${system.gpu_allocator}",
        "dropout": training.get("dropout", 0.1),
        "accumulate_gradient": 1,
        "patience": training.get("patience", 0),
        "max_epochs": training.get("max_epochs", 0),
        "max_steps": training.get("max_steps", 0),
        "eval_frequency": training.get("eval_frequency", 200),
        "frozen_components": [],
        "annotating_components": [],
        "optimizer": dict(training["optimizer"]),
        "batcher": batcher,
        "score_weights": _score_weights(C, components, training.get("score_weights") or {}, notes),
    }


def _score_weights(
    C: Dict[str, Any], components: Dict[str, Any], weights: Dict[str, Any], notes: List[str]
) -> Dict[str, Any]:
    """archsweep's score weights under spaCy's score names; a score spaCy does not
    report is left out (spaCy then weights its components' default scores)."""
    factories = {c["factory"] for c in components.values()}
    known = set().union(*(SPACY_SCORES.get(f, set()) for f in factories))
    renamed: Dict[str, Tuple[str, str]] = {}
    taggers = [n for n, c in components.items() if c["factory"] == "tagger"]
    if taggers and C["components"][taggers[0]].get("label_attr", "upos") == "upos":
        renamed["pos_acc"] = ("tag_acc", "the tagger's UPOS accuracy is spaCy's tag_acc")
    if "textcat" in factories:
        renamed["cats_acc"] = ("cats_micro_f", "with one class per text, micro-averaged F equals accuracy")
    out: Dict[str, Any] = {}
    for key, value in weights.items():
        if key in renamed:
            new, why = renamed[key]
            notes.append(f"training.score_weights.{key} -> {new}: {why}")
            out[new] = value
        elif key in known:
            out[key] = value
        elif value:
            notes.append(f"training.score_weights.{key} left out: spaCy does not report it")
    return out
