"""MAP protocol (Table I): fit each method at each bit length on the shared training split, encode
queries and database, rank, score, and store one record per run.

    python -m protocols.map --dataset fashion-mnist --methods hdhash,hashnet --bits 16,32,48,64

Writes ``<out>/map/runs/<dataset>/*.json`` (one raw record per run), then rebuilds
``<out>/map/<dataset>.csv``, ``.md`` (rows: bit lengths, columns: methods) and ``.png``.

On the photo datasets (images decoded on demand, :mod:`datasets.listfile`) deep methods train on the
images; shallow methods run on the features named by ``--features`` (:mod:`deep.features`).
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import time

from common.files import atomic_savez
from common.threads import pin_threads as set_threads
from common.threads import torch_thread_count
from protocols.records import provenance, safe_name, write_record

PROG = "python -m protocols.map"


class UsageError(Exception):
    """Bad command-line input; reported as one line, before any work or file is written."""


def parse_bits(text: str) -> list[int]:
    from methods.base import check_nbits

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--bits must be comma-separated integers, got {text!r}") from None
    if not values:
        raise UsageError("--bits is empty; give e.g. --bits 16,32,48,64")
    for value in values:
        try:
            check_nbits(value)
        except ValueError as exc:
            raise UsageError(f"--bits: {exc}") from None
    return values


def literal_or_text(text: str):
    """A Python literal (``0.5``, ``(1,1,1)``, ``None``), else the text itself (``prefix``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_params(items: list[str]) -> dict:
    params = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--param takes NAME=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        params[name.strip()] = literal_or_text(text)
    return params


def method_params(cls, shared: dict) -> dict:
    """The shared parameters that ``cls`` accepts (e.g. --device only reaches deep methods)."""
    accepted = set(cls._param_names())
    return {k: v for k, v in shared.items() if k in accepted}


def changed_params(record: dict, shared: dict | None = None) -> dict:
    """``{name: (stored, now)}`` for the parameters of a run record that differ from what a run
    would use now: the method's current defaults with the ``shared`` (``--param``) values. The seed
    and the settings that do not change a model (device, progress, cache, threads) are not compared;
    a parameter the record does not have (added to the method since) counts as unchanged; an
    unknown method has nothing to compare."""
    import json

    from methods.deep_method import UNCACHED_PARAMS
    from methods import UnknownMethodError, get_method_class

    try:
        cls = get_method_class(record["method"])
    except UnknownMethodError:
        return {}
    now = cls(nbits=int(record["bits"]), **method_params(cls, shared or {})).get_params()
    stored = record.get("params") or {}

    def same(a, b):
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)

    return {k: (stored[k], now[k]) for k in sorted(now)
            if k in stored and k != "random_state" and k not in UNCACHED_PARAMS and not same(stored[k], now[k])}


def build_parser() -> argparse.ArgumentParser:
    from datasets import list_datasets
    from methods import list_methods

    parser = argparse.ArgumentParser(
        prog=PROG, description="MAP protocol (Table I): train, encode, rank and score methods on a dataset's shared split.",
        epilog=f"methods: {', '.join(list_methods())}; datasets: {', '.join(list_datasets())}",
    )
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset name (default: fashion-mnist)")
    parser.add_argument("--methods", default="lsh,itq", help="comma-separated method names (default: lsh,itq)")
    parser.add_argument("--bits", default="16,32,48,64", help="comma-separated code lengths, positive multiples of 8 (default: 16,32,48,64)")
    parser.add_argument("--topk", type=int, default=None, help="K of MAP@K (default: the dataset's, PROTOCOL.md; all for digits)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of every method (default: 0)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--save-codes", metavar="DIR", default=None, help="also save each run's packed codes and labels as DIR/<dataset>-<method>-<bits>.npz")
    parser.add_argument("--data-root", default=None, help="folder with the dataset's files (e.g. Fashion-MNIST's IDX files)")
    parser.add_argument("--device", default=None, help="device for deep methods: cpu, cuda or auto (default: the method's, auto)")
    parser.add_argument("--levels", default=None, help="HDHash level sizes, e.g. 8,16,40 (must sum to the bit length; one --bits value)")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="extra method parameter, passed to every method that accepts NAME (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="pin torch/BLAS/faiss threads to this number (default: libraries' defaults)")
    parser.add_argument("--features", default="alexnet-fc7", choices=["alexnet-fc7", "pixels", "none"],
                        help="what shallow methods take on the photo datasets (imagenet-100, nus-wide-21, ms-coco, listfile): "
                             "alexnet-fc7 = ImageNet AlexNet's fc7 (DeCAF7, the paper's; needs the weights), pixels = 32x32 RGB, "
                             "none = refuse (default: alexnet-fc7); see deep/features.py")
    return parser


def validate(args):
    from datasets import list_datasets
    from methods import UnknownMethodError, get_method_class

    if args.dataset not in list_datasets():
        raise UsageError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(list_datasets())}")
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not names:
        raise UsageError("--methods is empty; give e.g. --methods lsh,itq")
    classes = {}
    for name in names:
        try:
            classes[name] = get_method_class(name)
        except UnknownMethodError as exc:
            raise UsageError(str(exc)) from None
    bits = parse_bits(args.bits)
    if args.topk is not None and args.topk <= 0:
        raise UsageError(f"--topk must be positive, got {args.topk}")
    shared = parse_params(args.param)
    if args.device is not None:
        shared["device"] = args.device
    if args.levels is not None:
        levels = tuple(parse_bits(args.levels))
        if len(bits) != 1 or sum(levels) != bits[0]:
            raise UsageError(f"--levels {args.levels} must sum to the one --bits value, got --bits {args.bits}")
        shared["levels"] = levels
    return classes, bits, shared


def run_one(dataset, cls, bits, seed, topk, shared, save_codes=None) -> list[dict]:
    """Fit, encode, search and score one method at one bit length; one record per search mode."""
    from protocols.metrics import score_index

    method = cls(nbits=bits, **dict({"random_state": seed}, **method_params(cls, shared)))
    X_train, y_train = dataset.part("train")
    X_query, y_query = dataset.part("query")
    X_db, y_db = dataset.part("database")

    start = time.perf_counter()
    method.fit(X_train, y_train if cls.supervised else None)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    db_codes = method.encode(X_db)
    queries = method.encode_queries(X_query)
    encode_s = time.perf_counter() - start
    if save_codes:
        query_codes = queries if queries.dtype.name == "uint8" else method.encode(X_query)
        atomic_savez(os.path.join(save_codes, f"{dataset.name}-{cls.name}-{bits}.npz"),
                     query_codes=query_codes, db_codes=db_codes, query_labels=y_query, db_labels=y_db)

    records = []
    for search in method.searches:
        start = time.perf_counter()
        index = method.build_index(db_codes, search)
        metrics = score_index(index, queries, y_query, y_db, topk, nbits=bits)
        search_s = time.perf_counter() - start
        records.append({
            "dataset": dataset.name, "method": cls.name, "bits": bits, "search": search,
            "default_search": search == method.searches[0],
            "topk": int(topk if topk is not None else len(y_db)), **metrics,
            # a model loaded from the cache reports the training time it took when it was trained
            "train_s": round(method.fit_info.get("train_seconds", train_s) if method.fit_info.get("cached") else train_s, 3),
            "fit_wall_s": round(train_s, 3), "encode_s": round(encode_s, 3), "search_s": round(search_s, 3),
            "index_bytes": int(getattr(index, "nbytes", 0)),
            "seed": seed, "split_sha256": dataset.split_sha256,
            **{key: dataset.info[key] for key in ("data_sha256", "features") if key in dataset.info},
            "n_query": len(y_query), "n_db": len(y_db), "n_train": len(y_train),
            "params": method.get_params(), "fit_info": method.fit_info,
            # a deep model's weights depend on the thread count it was trained with (about 0.01 MAP)
            "torch_threads": getattr(method, "num_threads", None) or torch_thread_count(),
            **provenance(),
        })
    return records


def photo_dataset(dataset) -> bool:
    from datasets.images import is_lazy

    return is_lazy(dataset.X)


def shallow_features(dataset, method: str, kind: str, device=None):
    """The feature dataset shallow methods run on for a photo dataset (deep/features.py)."""
    from deep.features import feature_dataset

    if kind == "none":
        raise ValueError(f"{method} is shallow and takes feature vectors; {dataset.name}'s images are decoded on demand "
                         "and are not flattened into memory: pass --features alexnet-fc7 (the paper's DeCAF7) or pixels")
    try:
        return feature_dataset(dataset, kind, device=device or "auto")
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise RuntimeError(f"{kind} features for the shallow methods on {dataset.name}: {first}"
                           f"{'; or pass --features pixels' if kind != 'pixels' else ''}") from None


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        classes, bits, shared = validate(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    from datasets import DatasetError, load_dataset
    from protocols.report import runs_folder, write_map_report

    if args.threads:
        set_threads(args.threads)
    try:
        dataset = load_dataset(args.dataset, data_root=args.data_root, seed=args.seed)
    except DatasetError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    topk = args.topk if args.topk is not None else dataset.topk
    if topk is not None and topk >= len(dataset.split.database):
        topk = None

    from tqdm import tqdm

    jobs = [(name, cls, b) for name, cls in classes.items() for b in bits]
    progress = tqdm(jobs, desc=f"MAP on {dataset.name}", unit="run", file=sys.stderr)
    summary, features = [], {}
    for name, cls, b in progress:
        progress.set_postfix_str(f"{name} {b} bits")
        try:
            data = dataset
            if not cls.deep and photo_dataset(dataset):
                if args.features not in features:
                    features[args.features] = shallow_features(dataset, name, args.features, args.device)
                data = features[args.features]
            records = run_one(data, cls, b, args.seed, topk, shared, args.save_codes)
        except (ValueError, RuntimeError, MemoryError) as exc:
            progress.close()
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"{PROG}: error: {name} at {b} bits failed: {message}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            progress.close()
            print(f"{PROG}: interrupted during {name} at {b} bits; the {len(summary)} finished rows are stored "
                  "(files are replaced whole, never half-written): rerun the command to finish", file=sys.stderr)
            return 130
        for record in records:
            stem = safe_name(f"{name}-{b}-{record['search']}-top{record['topk']}-seed{args.seed}")
            write_record(runs_folder(args.out, dataset.name) / f"{stem}.json", record)
            summary.append(record)
        write_map_report(args.out, dataset.name, seed=args.seed, topk=records[0]["topk"])
    for record in summary:
        print(f"{record['method']:>8} {record['bits']:>3} bits {record['search']:<10} "
              f"MAP@{record['topk']}={record['map']:.4f} MAP@all={record['map_all']:.4f} "
              f"train {record['train_s']:.1f}s")
    print(f"wrote {os.path.join(args.out, 'map', dataset.name)}.{{csv,md,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
