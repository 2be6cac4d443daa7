"""Entity linking: the component (`component`) and its knowledge base (`kb`, with the
MiniLM entity encoder in `kb_minilm`)."""
