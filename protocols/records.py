"""Raw run records and atomic file writes.

Every run writes one JSON record (config, seed, split hash, versions, machine, timings, metrics);
CSV, Markdown and plots are rebuilt from the records by :mod:`protocols.report`. Files are written
to a temporary name and renamed, so an interrupted run never leaves half a file.
"""
from __future__ import annotations

import io
import json
import os
import platform
import re
import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savez(path, **arrays) -> Path:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_savefig(fig, path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


@lru_cache(maxsize=1)
def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


@lru_cache(maxsize=1)
def library_versions() -> dict:
    import faiss
    import numpy
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "sklearn": sklearn.__version__,
    }


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")


def write_record(path, record: dict) -> Path:
    return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, default=_json_default) + "\n")


def read_records(folder) -> list[dict]:
    folder = Path(folder)
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"corrupt run record {path}: {exc}; delete it and rerun that run") from None
    return records


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
