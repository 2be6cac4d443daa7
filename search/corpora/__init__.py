"""Corpus readers: annotated files into Examples (a Doc plus gold annotations),
features hashed once per corpus. Importing the package registers the readers."""

from . import conllu, docbin, entity_linker, iob2, textcat  # noqa: F401
