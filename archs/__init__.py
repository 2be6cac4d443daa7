"""spaCy v3's model-architecture registry, implemented on Thinc alone.

`from archs import registry`; `registry.architectures.get("spacy.HashEmbedCNN.v1")`
returns the builder, `registry.resolve(config)` builds what a config names.
"""

from .registry import registry
from .features import ATTRS, Doc, make_docs
from . import layers  # noqa: F401  (registers the layers)
from . import tok2vec, tagger, parser, textcat, entity_linker, transformer  # noqa: F401  (register the architectures)

__all__ = ["registry", "ATTRS", "Doc", "make_docs"]
