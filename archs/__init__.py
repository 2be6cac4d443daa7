"""spaCy v3's model-architecture registry, implemented on Thinc alone.

`from archs import registry`; `registry.architectures.get("spacy.HashEmbedCNN.v1")`
returns the builder, `registry.resolve(config)` builds what a config names.
"""

# imported for their registrations (the layers and the architectures)
from . import entity_linker, layers, parser, tagger, textcat, tok2vec, transformer  # noqa: F401
from .features import ATTRS, Doc, make_docs
from .registry import registry

__all__ = ["registry", "ATTRS", "Doc", "make_docs"]
