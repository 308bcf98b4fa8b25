"""Retrieval: sentence embeddings, the FAISS index, the knowledge corpus, similar demonstrations."""
