"""Search lives here: exhaustive Hamming ranking, HDHash's tree, faiss wrappers."""
