"""Atomic file writes and the cache folder.

Every file the suite writes (records, tables, plots, codes, caches, models) goes to a temporary
name unique to the process in the target's folder and is then renamed over the target, so a killed
or failing write never leaves half a file and two processes writing the same target never collide.
Files get the mode the umask gives (0644 under 022), not ``mkstemp``'s 0600. The first write to a
folder removes the temporary files that writers killed earlier left there (an hour old or more).
"""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time
from pathlib import Path

#: where splits, trained models, features and efficiency codes are cached; override with HASHBENCH_CACHE
CACHE_DIR = Path(os.environ.get("HASHBENCH_CACHE", Path(__file__).resolve().parent.parent / ".cache"))



def cache_dir() -> Path:
    """The cache root now (tests point ``CACHE_DIR`` elsewhere)."""
    return Path(CACHE_DIR)


#: every temporary file this module creates ends so; :func:`remove_orphan_temps` knows them by it
TMP_SUFFIX = ".tmp"


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: folders whose orphaned temporary files this process has already removed
_SWEPT: set = set()


def atomic_write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent not in _SWEPT:  # the first write to a folder clears what killed writers left there
        remove_orphan_temps(path.parent)
        _SWEPT.add(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def strict_json(value):
    """``value`` as plain Python (numpy scalars and arrays converted) with every non-finite float
    replaced by ``None``, so the JSON written is strict (``json.dumps`` would write ``NaN`` and
    ``-Infinity``, which other readers refuse)."""
    import numpy as np

    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist() if isinstance(value, np.ndarray) else value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [strict_json(v) for v in value]
    return value


def to_json_text(value, indent: int | None = 1) -> str:
    """Strict, sorted JSON of ``value`` (numpy values as plain numbers, non-finite numbers as null;
    anything else JSON has no type for, as its text)."""
    return json.dumps(strict_json(value), indent=indent, sort_keys=True, allow_nan=False, default=str)


def atomic_write_json(path, value) -> Path:
    return atomic_write_text(path, to_json_text(value) + "\n")


def atomic_savez(path, **arrays) -> Path:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_save_npy(path, array) -> Path:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_savefig(fig, path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_torch_save(obj, path) -> Path:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def one_line(exc: BaseException) -> str:
    """An exception's first line, or its type's name where it has no message (for one-line warnings)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class UnreadableFile(ValueError):
    """A file that is damaged, truncated, or holds more than tensors and plain containers."""


def load_torch_plain(path):
    """``torch.load`` on the CPU with ``weights_only=True``: tensors and plain containers only, so a
    file can never run code. Raises :class:`UnreadableFile` with torch's reason in one line."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or unsafe file
        raise UnreadableFile(one_line(exc)) from exc


def remove_orphan_temps(folder, older_than_s: float = 3600.0) -> int:
    """Delete temporary files a killed writer left in ``folder`` (ours end in ``.tmp``, older
    versions' too: ``model.pt.<pid>.tmp``), if they are older than ``older_than_s`` (a live writer's
    file is seconds old); returns how many went."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    now = time.time()
    for path in folder.glob(f"*{TMP_SUFFIX}"):
        try:
            if now - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed
