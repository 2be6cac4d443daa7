"""Thinc layers the architectures are composed of, one layer per module."""

from .bilstm import BiLSTM
from .character_embed import CharacterEmbed
from .feature_extractor import FeatureExtractor
from .fixed_dropout import FixedDropout
from .hf_transformer import HFTransformer
from .layer_norm import LayerNorm
from .maxout import Maxout
from .normalized_maxout import NormalizedMaxout
from .precomputable_affine import PrecomputableAffine
from .static_vectors import StaticVectors
from .tok2vec_listener import Tok2VecListener
from .trfs2arrays import trfs2arrays
from .with_batch_array import with_batch_array

__all__ = [
    "FeatureExtractor",
    "StaticVectors",
    "CharacterEmbed",
    "BiLSTM",
    "FixedDropout",
    "LayerNorm",
    "Maxout",
    "NormalizedMaxout",
    "Tok2VecListener",
    "PrecomputableAffine",
    "HFTransformer",
    "trfs2arrays",
    "with_batch_array",
]
