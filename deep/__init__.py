"""Shared deep-hashing machinery: backbones and the one trainer every deep method uses."""
