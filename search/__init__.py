"""Training, sweeps, tracking and the `archsweep` command line."""

# Importing these registers the readers, batchers and component factories.
from . import batching, corpus, entity_linker, entity_linker_corpus, iob2, pipeline, textcat, textcat_corpus, transition  # noqa: F401
