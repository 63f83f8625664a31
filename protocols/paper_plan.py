"""What the paper's tables need run: which datasets are here, which stored rows are reused, which
(method, bits) pairs still have to run (``python -m protocols.paper`` calls these; so can a notebook)."""
from __future__ import annotations

from protocols import runner

#: the datasets of Table I built into the suite, and the paper's own (user-supplied photo datasets)
BUILTIN = ["fashion-mnist", "fashion-mosaic"]
PAPER = ["imagenet-100", "nus-wide-21", "ms-coco"]


def probe(name: str, data_root=None, seed: int = 0):
    """``(dataset or None, status text)``: the loaded dataset, or why it is unavailable."""
    from datasets import DatasetError, load_dataset

    try:
        dataset = load_dataset(name, data_root=data_root, seed=seed)
    except DatasetError as exc:
        return None, str(exc)
    return dataset, f"available ({dataset.info.get('root', 'built in')})"


def stored_rows(out, dataset, seed: int, shared: dict | None = None, all_seeds: bool = False) -> dict:
    """Stored records of ``dataset``: ``{(method, bits): record}`` (default search) of the variant a
    run with ``shared`` (``--param``) makes: the default variant, the one Table I shows, without.
    The run trained with the split's seed; with ``all_seeds``, ``{(method, bits): [record per
    training seed]}``."""
    from methods import UnknownMethodError

    topk, data_sha = runner.resolve_topk(dataset), dataset.info.get("data_sha256")
    wanted = {}

    def variant(method, bits):
        if (method, bits) not in wanted:
            try:
                now = runner.create_for(dataset.name, method, bits, shared).get_params()
                wanted[(method, bits)] = runner.variant_of(method, bits, now, dataset.name)
            except UnknownMethodError:  # a record of a method no longer registered matches nothing
                wanted[(method, bits)] = None
        return wanted[(method, bits)]

    rows = {}
    for record in runner.stored(out, dataset.name):
        if (record.get("dataset") == dataset.name and record.get("default_search", True)
                and record.get("seed") == seed and int(record.get("topk", -1)) == topk
                and record.get("split_sha256") == dataset.split_sha256
                and (data_sha is None or record.get("data_sha256") == data_sha)
                and record.get("variant", "") == variant(record["method"], int(record["bits"]))):
            key = (record["method"], int(record["bits"]))
            if all_seeds:
                rows.setdefault(key, []).append(record)
            elif record.get("train_seed", seed) == seed:
                rows[key] = record
    return rows


def stale_params(record: dict, shared: dict | None = None) -> list[str]:
    """Why a stored row is stale, as ``"name old -> new"`` per parameter that differs from what a
    run would use now (:func:`protocols.runner.changed_params`)."""
    return [f"{k} {old!r} -> {new!r}" for k, (old, new) in runner.changed_params(record, shared).items()]


def plan(dataset, methods, bits, out, seed, shared=None) -> tuple[dict, list, dict]:
    """``(reusable, to_run, stale)``: stored rows run with today's parameters, the (method, bits)
    pairs to run (absent or stale), and why each stale one is (:func:`stale_params`)."""
    stored = stored_rows(out, dataset, seed, shared)
    stale = {key: why for key, record in stored.items() if (why := stale_params(record, shared))}
    reusable = {key: record for key, record in stored.items() if key not in stale}
    missing = [(m, b) for m in methods for b in bits if (m, b) not in reusable]
    return reusable, missing, stale
