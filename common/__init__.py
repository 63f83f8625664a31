"""The bottom layer: helpers every other package uses and that import nothing from the project.

``files`` (atomic writes, the cache folder), ``threads`` (pinning torch, BLAS and faiss threads),
``hamming`` (packed codes as words, Hamming distances, ranking by distance), ``ranking`` (relevance
and average precision: the one MAP), ``provenance`` (machine, versions, commit, time of a record).
"""
