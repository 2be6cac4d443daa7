"""The components a pipeline is built from, one task each: the tagger, the transition
parser and NER, text classification and entity linking. Importing the package
registers their factories."""

from . import tagger, textcat, transition  # noqa: F401
from .entity_linker import component  # noqa: F401
