"""Table II's databases at scale: the codes of each size, encoded and, past a point, generated.

The database grows beyond the dataset by encoding seeded transformed copies of its database images
(:func:`augment`: shifts, flips, noise) through the trained models, so the codes keep their real
distribution; past ``--generate-past`` codes it grows at the code level instead
(:func:`generated_codes`: each source code with its bits flipped at the rates its encoded copies
showed, :func:`flip_rates`; protocols/README.md). :func:`prepare_side` fits one method and grows its
codes to the largest size (:class:`Side`); code ``p`` is a copy of database item ``p % n`` and has
its labels.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.files import atomic_save_npy, cache_dir


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A transformed copy of ``images`` (n, C, H, W) in [0, 1]: a random shift of up to 2 pixels
    (zero fill), a horizontal flip with probability 1/2, Gaussian noise (sigma 0.03), clipped."""
    n, _, height, width = images.shape
    out = np.zeros_like(images)
    shifts = rng.integers(-2, 3, size=(n, 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            if not len(rows):
                continue
            src_y, dst_y = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
            src_x, dst_x = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
            out[rows, :, dst_y, dst_x] = images[rows, :, src_y, src_x]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, :, ::-1]
    out += rng.normal(0.0, 0.03, size=out.shape).astype(out.dtype)
    return np.clip(out, 0.0, 1.0, out=out)


def copy_rng(seed: int, copy: int) -> np.random.Generator:
    return np.random.default_rng([seed, copy])


#: the code-level generator's name in every record it made (raise it when its output changes)
GENERATOR = "bitflip-v1"
#: the generator's random stream: ``default_rng([seed, GENERATOR_STREAM, copy])``, apart from the
#: image augmentation's ``[seed, copy]``
GENERATOR_STREAM = 0x6E6


def flip_rates(codes: np.ndarray, n_base: int) -> tuple[np.ndarray, np.ndarray]:
    """The generator's calibration: ``(rates (n_base, nbits) float32, copies (n_base,))``. Code ``p``
    of an encoded database is a copy of source item ``p % n_base`` (copy 0 is the source itself);
    ``rates[i, b]`` is the share of item i's encoded copies whose bit b differs from the source's."""
    codes = np.asarray(codes)
    if len(codes) < 2 * n_base:
        raise ValueError(f"the generator is calibrated on encoded copies: {len(codes):,} codes hold no full copy "
                         f"of the {n_base:,} source items")
    source_bits = np.unpackbits(codes[:n_base], axis=1)
    flips = np.zeros(source_bits.shape, np.int64)
    copies = np.zeros(n_base, np.int64)
    for start in range(n_base, len(codes), n_base):
        part = np.unpackbits(codes[start:start + n_base], axis=1)
        flips[:len(part)] += part != source_bits[:len(part)]
        copies[:len(part)] += 1
    return (flips / copies[:, None]).astype(np.float32), copies


def generated_codes(source: np.ndarray, rates: np.ndarray, start: int, stop: int, seed: int) -> np.ndarray:
    """Codes at positions ``[start, stop)`` of a database grown at the code level: position ``p`` is
    copy ``p // n_base`` of source item ``i = p % n_base``, its code the source's with each bit b
    flipped independently with probability ``rates[i, b]`` (:func:`flip_rates`). Each copy draws from
    its own seeded stream, so a code does not depend on which range is asked for."""
    n_base = len(source)
    out = np.empty((stop - start, source.shape[1]), np.uint8)
    for copy in range(start // n_base, (stop - 1) // n_base + 1 if stop > start else 0):
        rng = np.random.default_rng([seed, GENERATOR_STREAM, copy])
        flips = rng.random(rates.shape, dtype=np.float32) < rates
        codes = source ^ np.packbits(flips, axis=1)
        lo, hi = max(start, copy * n_base), min(stop, (copy + 1) * n_base)
        out[lo - start:hi - start] = codes[lo - copy * n_base:hi - copy * n_base]
    return out


def scaled_codes(method, images: np.ndarray, size: int, seed: int, cache_key: str,
                 generate_past: int | None = None) -> np.ndarray:
    """Codes of ``size`` items: the database itself, then transformed copies of it, encoded through
    ``method`` (each copy's codes cached under ``.cache/efficiency/``), up to ``generate_past`` codes;
    past that, grown at the code level (:func:`generated_codes`) from the database's own codes with
    the flip rates of the encoded copies. Code ``p`` is a copy of database item ``p % len(images)``
    and has its labels."""
    from tqdm import tqdm

    n = len(images)
    encoded = size if generate_past is None else min(size, generate_past)
    folder = cache_dir() / "efficiency"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for copy in tqdm(range(math.ceil(encoded / n)), desc=f"codes {method.name}", unit="copy", file=sys.stderr,
                     leave=False):
        path = folder / f"{cache_key}-copy{copy}.npy"
        if path.is_file():
            codes = np.load(path)
        else:
            batch = images if copy == 0 else augment(images, copy_rng(seed, copy))
            codes = method.encode(batch)
            atomic_save_npy(path, codes)
        parts.append(codes)
    codes = np.concatenate(parts)[:encoded]
    if encoded == size:
        return codes
    rates, _ = flip_rates(codes, n)
    grown = np.empty((size, codes.shape[1]), np.uint8)
    grown[:encoded] = codes
    step = 64 * n  # a few copies at a time: the draws of one copy are (n, nbits) float32
    for start in range(encoded, size, step):
        grown[start:min(size, start + step)] = generated_codes(codes[:n], rates, start, min(size, start + step),
                                                               seed)
    return grown


# -- one method's codes ---------------------------------------------------------------------------------
@dataclass
class Side:
    """One method's codes at the largest size, its queries and labels, and what its indexes need."""

    method: str
    code_bits: str
    codes: np.ndarray
    labels: np.ndarray  # the database items'; code p has item p % len(labels)'s (scaled_codes)
    queries: np.ndarray
    build: dict  # index name -> the method's build parameters for it
    encoded: int  # the leading codes that were encoded; the rest were generated


def prepare_side(dataset, name: str, bits: int, size: int, seed: int, params: dict,
                 generate_past: int | None = None) -> Side:
    """Fit (or load) ``name`` and grow its database to ``size`` codes (:func:`scaled_codes`)."""
    from protocols import runner

    method, _ = runner.fit(dataset, name, bits, seed, params)
    # the codes are the model's: a deep model is named by its cache file (every parameter, the
    # method's cache_version and the training data), so codes of a stale model are never reused
    model = Path(method.fit_info.get("cache_path", "")).name
    key = hashlib.sha256(json.dumps([name, method.cache_params(), dataset.split_sha256, model], sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]
    X_db, y_db = dataset.part("database")
    codes = scaled_codes(method, X_db, size, seed, f"{dataset.name}-{name}-{bits}-{key}-seed{seed}", generate_past)
    # what the method's own indexes need beyond the codes (the tree's levels)
    build = {mode.index: method.index_build_params(mode.index) for mode in method.searches}
    levels = build.get("tree", {}).get("levels")
    return Side(name, "+".join(map(str, levels)) if levels else str(bits), codes, y_db,
                method.encode(dataset.part("query")[0]), build, size if generate_past is None else generate_past)

