"""The library under the commands: run one (dataset, method, bits, seed, parameters), get its
records back, store them. Callable from a notebook::

    from protocols import runner
    records = runner.run("digits", "itq", 32)          # fit, encode, search, score: one record per search
    runner.store(records, "results")                   # results/map/runs/digits/*.json

The commands (``python -m protocols.map`` and the others) parse their flags and call these; input
checks raise :class:`UsageError`, whose message is the one line a command prints.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.files import atomic_savez, one_line
from common.provenance import now_utc
from common.threads import torch_thread_count
from protocols.records import (
    PROTOCOL_FIELDS,
    SCHEMA_VERSION,
    SEARCH_LABEL,
    check_name,
    check_record,
    provenance,
    read_record,
    read_records,
    safe_name,
    write_record,
)


class UsageError(ValueError):
    """Bad input; reported as one line, before any work or file is written."""


# -- input -------------------------------------------------------------------------------------
def literal_or_text(text: str):
    """A Python literal (``0.5``, ``(1,1,1)``, ``None``), else the text itself (``prefix``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_names(text: str, flag: str) -> list[str]:
    """The comma-separated items of a flag; an empty flag or an empty item (``16,,32``) is refused."""
    names = [part.strip() for part in (text or "").split(",")]
    if not any(names):
        raise UsageError(f"{flag} is empty")
    if not all(names):
        raise UsageError(f"{flag} has an empty item in {text!r}; give comma-separated values")
    return names


def parse_ints(text: str, flag: str) -> list[int]:
    parts = parse_names(text, flag)
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers, got {text!r}") from None


def parse_bits(text: str, flag: str = "--bits") -> list[int]:
    from methods.base import check_nbits

    values = parse_ints(text, flag)
    for value in values:
        try:
            check_nbits(value)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None
    return values


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    seeds = parse_ints(text, flag)
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UsageError(f"{flag} must be distinct non-negative integers, got {text!r}")
    return seeds


def parse_params(items: list[str] | None) -> dict:
    params = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--param takes NAME=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        params[name.strip()] = literal_or_text(text)
    return params


def method_classes(names: list[str]) -> dict:
    """``{name: class}`` of registered methods; ``paper`` stands for Table I's methods, ``beyond`` for
    those after the paper (Table I's "beyond the paper" block)."""
    from methods import UnknownMethodError, get_method_class, list_methods

    groups = {"paper": lambda: list_methods(paper=True), "beyond": lambda: list_methods(beyond=True)}
    expanded = [m for name in names for m in (groups[name]() if name in groups else [name])]
    try:
        return {name: get_method_class(name) for name in dict.fromkeys(expanded)}
    except UnknownMethodError as exc:
        raise UsageError(f"{exc} (or 'paper' for Table I's, 'beyond' for those after the paper)") from None


def check_jobs(classes: dict, bits: list[int], params: dict, device: str | None = None, own_params=None) -> None:
    """Every (method, bits) instantiated with ``params`` (and ``device`` where a method takes one)
    and checked (``check_params``) before any work; a ``params`` key no selected method has is refused.
    ``own_params(method)``: parameters a method runs with under ``params`` (its authors' schedule)."""
    from methods import create_method

    flags = {"nbits": "--bits", "random_state": "--seed"}
    for key in params:
        if key in flags:
            raise UsageError(f"--param {key} is set by {flags[key]}, not --param")
    accepted = sorted({p for cls in classes.values() for p in cls.get_param_names()} - set(flags))
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UsageError(f"--param {unknown[0]}: no selected method ({', '.join(classes)}) has that parameter; "
                         f"valid: {', '.join(accepted) or 'none'}")
    for name, cls in classes.items():
        for b in bits:
            try:
                checked = {**(own_params(name) if own_params else {}), **params,
                           **({"device": device} if device else {})}
                create_method(name, nbits=b, **method_params(cls, checked)).check_params()
            except (ValueError, TypeError) as exc:
                raise UsageError(f"{name} at {b} bits: {exc}") from None


def check_writable(folder, flag: str) -> Path:
    """``folder`` (created if missing) after proving a file can be written in it; else
    :class:`UsageError` naming the flag, before any work is done."""
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {folder} is a file, not a folder; give a folder for the results")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {folder} is not writable ({exc.strerror or exc}); "
                         "give a folder you can write") from None
    return folder


def method_params(cls, shared: dict) -> dict:
    """The shared parameters that ``cls`` accepts (e.g. --device only reaches deep methods)."""
    accepted = set(cls.get_param_names())
    return {k: v for k, v in shared.items() if k in accepted}


def changed_params(record: dict, shared: dict | None = None) -> dict:
    """``{name: (stored, now)}`` for the parameters of a run record that differ from what a run
    would use now: the method's current defaults on the record's dataset (the training-budget rule's
    too, :func:`budget_params`) with the ``shared`` (``--param``) values. The seed
    and the settings that do not change a model (the method's ``runtime_params``) are not compared; a
    parameter the record does not have (added to the method since) counts as unchanged; an unknown
    method has nothing to compare."""
    from methods import UnknownMethodError, get_method_class

    try:
        cls = get_method_class(record["method"])
    except UnknownMethodError:
        return {}
    now = create_for(record.get("dataset"), record["method"], int(record["bits"]), shared).get_params()
    stored = record.get("params") or {}
    return {k: (stored[k], now[k]) for k in sorted(now)
            if k in stored and k != "random_state" and k not in cls.runtime_params
            and not same_param_value(stored[k], now[k])}


def same_param_value(a, b) -> bool:
    """Whether two parameter values are the same as stored in a record (compared as their JSON text, so
    a tuple equals the list a record reads back)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def training_seconds(fit_info: dict, call_seconds: float) -> float:
    """A run's training time: ``call_seconds`` (its fit call's), unless the model was loaded from the
    cache or resumed from its checkpoint, which trained (partly) before that call: then the trainer's
    ``train_seconds``, which counts all of it."""
    if fit_info.get("cached") or "resumed_at_epoch" in fit_info:
        return fit_info.get("train_seconds", call_seconds)
    return call_seconds


#: the training-budget rule (issue 28): per dataset, what every deep method trains with by default
BUDGET = Path(__file__).parent / "settings" / "training_budget.json"


@functools.lru_cache(maxsize=None)
def _read_budget(path: str, stamp: int) -> dict:
    datasets = json.loads(Path(path).read_text()).get("datasets") or {}
    if not isinstance(datasets, dict):
        raise ValueError(f"{path}: 'datasets' must be an object of per-dataset rules")
    return datasets


def training_budget(path=None) -> dict:
    """``{dataset: {"epochs", "patience", "lr_factor": {label: factor}}}`` of the committed rule
    (:data:`BUDGET`; ``{}`` where the file is missing)."""
    path = Path(path or BUDGET)
    return _read_budget(str(path), path.stat().st_mtime_ns) if path.is_file() else {}


def budget_label(method: str, params: dict | None = None) -> str:
    """A method's key in the rule: ``hdhash[<loss>]`` for HDHash over another method's loss."""
    loss = (params or {}).get("level_loss")
    return f"{method}[{loss}]" if method == "hdhash" and loss not in (None, "hashnet") else method


def budget_params(dataset: str | None, method: str, bits: int, params: dict | None = None) -> dict:
    """The defaults the training-budget rule gives a deep ``method`` on ``dataset`` (a name): its
    ``epochs``, ``patience`` and ``validate_after``, and ``lr`` = the method's default times its
    ``lr_factor``; ``{}`` for a
    shallow method or a dataset the rule does not list. ``params`` (the run's own) picks HDHash's
    level loss; they override these where they set the same names."""
    from methods import get_method_class

    entry = training_budget().get(dataset) if dataset else None
    cls = get_method_class(method) if entry else None
    if not entry or not getattr(cls, "deep", False):
        return {}
    rule = {k: entry[k] for k in ("epochs", "patience", "validate_after") if k in entry}
    factor = (entry.get("lr_factor") or {}).get(budget_label(method, params))
    if factor is not None:
        rule["lr"] = scaled_lr(method, bits, factor)
    return rule


def beyond_schedule(level_loss: str, bits: int, dataset: str | None = None) -> dict:
    """HDHash's parameters over ``level_loss`` in Table I's "beyond the paper" block on ``dataset``: on
    a dataset the training-budget rule lists, ``level_loss`` alone (the rule trains it as every deep
    method, its rate from the rule's ``hdhash[<loss>]``); elsewhere that loss's own schedule
    (:func:`methods.hdhash.on_loss_schedule`: DPSH's 150 epochs without early stopping)."""
    from methods.hdhash import on_loss_schedule

    if dataset and dataset in training_budget():
        return {"level_loss": level_loss}
    return on_loss_schedule(level_loss, bits)


def scaled_lr(method: str, bits: int, factor: float) -> float:
    """``method``'s default learning rate times ``factor``, to 4 significant digits (so x 1/3 reads
    0.0003333 in a record's variant): the pilot's rates and the budget rule's."""
    from methods import create_method

    return float(f"{create_method(method, nbits=bits).lr * float(factor):.4g}")


def create_for(dataset: str | None, method: str, bits: int, params: dict | None = None, **fixed):
    """``method`` at ``bits`` as a run on ``dataset`` makes it: the training-budget rule's defaults
    (:func:`budget_params`), then the ``params`` it accepts, then ``fixed`` (e.g. the seed)."""
    from methods import create_method, get_method_class

    cls = get_method_class(method)
    return create_method(method, nbits=bits, **{**budget_params(dataset, method, bits, params),
                                                **method_params(cls, params or {}), **fixed})


#: the modern methods as their authors' code trains them: variant rows (``protocols.map --schedule authors``)
AUTHORS_SCHEDULES = Path(__file__).parent / "settings" / "authors_schedules.json"


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def authors_schedule(method: str) -> dict:
    """The parameters of ``method``'s authors' schedule (:data:`AUTHORS_SCHEDULES`), lists as tuples;
    :class:`UsageError` for a method that has none there."""
    schedules = json.loads(AUTHORS_SCHEDULES.read_text())["methods"]
    if method not in schedules:
        raise UsageError(f"--schedule authors: {method} has no authors' schedule; those with one: "
                         f"{', '.join(schedules)}")
    return {k: _as_tuples(v) for k, v in schedules[method].items()}


def variant_of(method: str, bits: int, params: dict, dataset: str | None = None) -> str:
    """The parameters a run set away from the method's defaults on ``dataset`` (its own, with the
    training-budget rule's for that dataset: :func:`budget_params`), as ``name=value`` text (the seed
    and the run-time settings aside); ``""`` is the default variant, the one Table I shows. Part of a
    record's identity, so a sweep or a typo never replaces the default row."""
    from methods import create_method, get_method_class

    cls = get_method_class(method)
    defaults = create_method(method, nbits=bits, **budget_params(dataset, method, bits, params)).get_params()
    return ",".join(f"{k}={params[k]!r}" for k in sorted(params)
                    if k not in ("nbits", "random_state") and k not in cls.runtime_params
                    and not same_param_value(params[k], defaults.get(k)))


# -- running ----------------------------------------------------------------------------------------
def load(dataset, data_root=None, seed: int = 0):
    """A :class:`datasets.Dataset`, given one or its name."""
    from datasets import load_dataset

    return load_dataset(dataset, data_root=data_root, seed=seed) if isinstance(dataset, str) else dataset


def resolve_topk(dataset, topk: int | None = None) -> int:
    """MAP@K's K: ``topk``, else the dataset's (PROTOCOL.md), capped at the database size (MAP@all)."""
    n_db = len(dataset.split.database)
    topk = dataset.topk if topk is None else topk
    return n_db if topk is None or topk >= n_db else int(topk)


#: the protocols a run follows: ``standard`` (Table I: the dataset's split as it is) and ``unseen``
#: (classes held out of training, :mod:`datasets.class_split`); records of each kind say which
PROTOCOLS = tuple(PROTOCOL_FIELDS)


@dataclass
class Evaluation:
    """One database a run is scored against: ``view``, the dataset as evaluated (its split's query and
    database parts), the ``fields`` its records add, and where its database items are in the dataset's
    database part (``positions``; None: all of it, in order), which is encoded once for every view."""

    view: object
    fields: dict
    positions: object = None


def _unseen_data(dataset, protocol: str, class_seed: int):
    from datasets.class_split import unseen_class_data

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return unseen_class_data(dataset, class_seed) if protocol == "unseen" else None


def training_part(dataset, protocol: str = "standard", class_seed: int = 0):
    """``(X, labels)`` a run trains on: the dataset's training part; under the unseen-class protocol
    its seen-class items, labels cut to the seen classes (:mod:`datasets.class_split`)."""
    data = _unseen_data(dataset, protocol, class_seed)
    return dataset.part("train") if data is None else data.training_part()


def evaluations(dataset, protocol: str = "standard", class_seed: int = 0) -> list[Evaluation]:
    """What a run is scored against: the dataset itself (standard); under the unseen-class protocol,
    the unseen-class queries against each of its databases (``unseen``, ``all``), with the fields that
    make its records the protocol's (``protocol``, ``database``, the class split and its SHA-256).
    A one-line ``ValueError`` for a protocol the dataset cannot follow (multi-label, one class)."""
    from datasets.class_split import DATABASES

    data = _unseen_data(dataset, protocol, class_seed)
    if data is None:
        return [Evaluation(dataset, {})]
    return [Evaluation(data.view(database), {"protocol": protocol, "database": database,
                                             **data.classes.record_fields()}, data.database_positions(database))
            for database in DATABASES]


def check_protocol(dataset, protocol: str = "standard", class_seed: int = 0) -> None:
    """:class:`UsageError` (one line, before any work) unless ``dataset`` can follow ``protocol``."""
    if class_seed < 0:
        raise UsageError(f"--class-seed must be a non-negative integer, got {class_seed}")
    try:
        evaluations(dataset, protocol, class_seed)
    except ValueError as exc:
        raise UsageError(f"--protocol {protocol}: {exc}") from None


def is_photo(dataset) -> bool:
    from datasets.images import is_lazy

    return is_lazy(dataset.X)


def no_features_message(method: str, dataset) -> str:
    return (f"{method} is shallow and takes feature vectors; {dataset.name}'s images are decoded on demand and are "
            "not flattened into memory: pass --features alexnet-fc7 (the paper's DeCAF7) or pixels")


def check_features(dataset, classes: dict, kind: str) -> None:
    """:class:`UsageError` (one line, before any run) when the shallow methods among ``classes`` ({name:
    class}) cannot get their ``kind`` features of the photo ``dataset`` on this machine (refused with
    ``none``; ``alexnet-fc7`` neither cached nor computable: :func:`deep.features.features_problem`),
    which every one of their runs would otherwise fail on. Deep methods take the images."""
    shallow = [name for name, cls in classes.items() if not cls.deep]
    if not shallow or not is_photo(dataset):
        return
    if kind == "none":
        raise UsageError(no_features_message(shallow[0], dataset))
    from deep.features import features_problem

    problem = features_problem(dataset, kind)
    if problem:
        raise UsageError(f"{', '.join(shallow)} run on feature vectors here: {problem}; or pass --features pixels "
                         "(not the paper's setting)")


def shallow_features(dataset, method: str, kind: str, device=None):
    """The feature dataset a shallow method runs on for a photo dataset (:mod:`deep.features`)."""
    from deep.features import feature_dataset

    if kind == "none":
        raise ValueError(no_features_message(method, dataset))
    try:
        return feature_dataset(dataset, kind, device=device or "auto")
    except RuntimeError as exc:
        raise RuntimeError(f"{kind} features for the shallow methods on {dataset.name}: {one_line(exc)}"
                           f"{'; or pass --features pixels' if kind != 'pixels' else ''}") from None


def fit(dataset, method: str, bits: int, seed: int = 0, params: dict | None = None, part=None):
    """``(fitted method, seconds)``: ``method`` at ``bits`` on the dataset's training part (or on
    ``part``, an ``(X, labels)`` pair: :func:`training_part`), trained with seed ``seed`` (its
    ``random_state``), under the training-budget rule where the dataset has one (:func:`create_for`)."""
    from methods import get_method_class

    cls = get_method_class(method)
    model = create_for(dataset.name, method, bits, params, random_state=seed)
    model.check_params()
    X_train, y_train = dataset.part("train") if part is None else part
    start = time.perf_counter()
    model.fit(X_train, y_train if cls.supervised else None)
    return model, time.perf_counter() - start


def score_search(model, mode, evaluation: Evaluation, queries, y_query, db_codes, y_db, topk: int | None,
                 bits: int) -> dict:
    """The fields of a record that one search of one view gives: the index ``mode`` names built on
    the view's database codes, its metrics at the view's MAP@K (:func:`resolve_topk`), its time and size."""
    from protocols.metrics import score_index

    view = evaluation.view
    view_codes, view_labels = ((db_codes, y_db) if evaluation.positions is None else
                               (db_codes[evaluation.positions], y_db[evaluation.positions]))
    topk_view = resolve_topk(view, topk)
    start = time.perf_counter()
    index = model.build_index(view_codes, mode)
    metrics = score_index(index, queries, y_query, view_labels, topk_view, nbits=bits)
    search_s = time.perf_counter() - start
    return {"search": mode.label, "default_search": mode == model.searches[0], "topk": topk_view, **metrics,
            **evaluation.fields, "search_s": round(search_s, 3), "index_bytes": int(index.nbytes),
            "n_db": len(view_labels), "n_train": len(view.split.train)}


def run(dataset, method: str, bits: int, *, seed: int = 0, train_seed: int | None = None, params: dict | None = None,
        topk: int | None = None, data_root=None, features: str = "alexnet-fc7", device: str | None = None,
        save_codes=None, protocol: str = "standard", class_seed: int = 0) -> list[dict]:
    """Fit ``method`` at ``bits`` on ``dataset`` (a name or a Dataset, split with ``seed``), trained
    with ``train_seed`` (default: ``seed``), encode, search with each of the method's searches and
    score: one record per search (the default search first). ``protocol="unseen"``: trained on the
    seen classes of the class split of ``class_seed``, queries of the unseen ones, scored against each
    of its databases from one trained model (:func:`evaluations`): one record per database and search."""
    train_seed = seed if train_seed is None else train_seed
    from methods import get_method_class

    dataset = load(dataset, data_root, seed)
    params = dict(params or {}, **({"device": device} if device else {}))
    if not get_method_class(method).deep and is_photo(dataset):
        dataset = shallow_features(dataset, method, features, device)
    scored = evaluations(dataset, protocol, class_seed)
    model, train_s = fit(dataset, method, bits, train_seed, params, part=training_part(dataset, protocol, class_seed))
    X_query, y_query = scored[0].view.part("query")  # every view of a protocol has the same queries
    X_db, y_db = dataset.part("database")  # and its database inside the dataset's, encoded once
    start = time.perf_counter()
    db_codes = model.encode(X_db)
    queries = model.encode_queries(X_query)
    encode_s = time.perf_counter() - start
    if save_codes:
        query_codes = queries if queries.dtype.name == "uint8" else model.encode(X_query)
        suffix = f"-train{train_seed}" if train_seed != seed else ""
        suffix += f"-{protocol}-classes{class_seed}" if protocol != "standard" else ""
        atomic_savez(Path(save_codes) / f"{dataset.name}-{method}-{bits}{suffix}.npz",
                     query_codes=query_codes, db_codes=db_codes, query_labels=y_query, db_labels=y_db)

    records = []
    for evaluation, mode in ((e, m) for e in scored for m in model.searches):
        searched = score_search(model, mode, evaluation, queries, y_query, db_codes, y_db, topk, bits)
        fit_info = model.fit_info
        records.append({
            "dataset": dataset.name, "method": method, "bits": bits, **searched,
            "train_s": round(training_seconds(fit_info, train_s), 3),
            "fit_wall_s": round(train_s, 3), "encode_s": round(encode_s, 3), "seed": seed, "train_seed": train_seed,
            "split_sha256": dataset.split_sha256,
            **{key: dataset.info[key] for key in ("data_sha256", "features") if key in dataset.info},
            "n_query": len(y_query), "params": model.get_params(),
            "variant": variant_of(method, bits, model.get_params(), dataset.name),
            "fit_info": fit_info,
            # a deep run's validation MAP after every epoch: whether its budget was enough (protocols.pilot)
            **({"val_map_history": list(model.val_map_history_)} if hasattr(model, "val_map_history_") else {}),
            # a deep model's weights depend on the thread count it was trained with (about 0.01 MAP)
            "torch_threads": getattr(model, "num_threads", None) or torch_thread_count(),
            # a shallow run's numbers can depend on BLAS's and OpenMP's (OPQ's on faiss's): part of its identity
            "threads": cpu_threads(),
            "schema_version": SCHEMA_VERSION,
            **provenance(),
        })
    return records


# -- storing ----------------------------------------------------------------------------------------
def runs_root(out) -> Path:
    """Where a results folder keeps its MAP records, one folder per dataset: ``<out>/map/runs/``."""
    return Path(out) / "map" / "runs"


def runs_folder(out, dataset: str) -> Path:
    return runs_root(out) / dataset


def protocol_root(out, protocol: str = "standard") -> Path:
    """The results root of ``protocol``'s records inside ``out``: ``out`` itself for the standard
    protocol (Table I), ``out/<protocol>`` for another, so its records (``<out>/unseen/map/runs/``)
    never meet Table I's readers, which read ``<out>/map/runs/`` (:func:`stored`)."""
    return Path(out) if protocol == "standard" else Path(out) / protocol


def record_path(out, record: dict) -> Path:
    """``<method>-<bits>-<search>-top<K>-seed<S>[-train<T>][-classes<C>-<database>][-v<variant hash>].json``
    under its protocol's root (:func:`protocol_root`): one file per identity (split seed S; training
    seed T where it is not S; the unseen-class protocol's class split seed C and database)."""
    stem = f"{record['method']}-{record['bits']}-{record['search']}-top{record['topk']}-seed{record['seed']}"
    if record.get("train_seed", record["seed"]) != record["seed"]:
        stem += f"-train{record['train_seed']}"
    protocol = record.get("protocol", "standard")
    if protocol != "standard":
        stem += f"-classes{record['class_seed']}-{record['database']}"
    if record.get("variant"):
        stem += "-v" + hashlib.sha256(record["variant"].encode()).hexdigest()[:10]
    return runs_folder(protocol_root(out, protocol), record["dataset"]) / f"{safe_name(stem)}.json"


def store(records: list[dict], out) -> list[Path]:
    """Write each record under ``<out>/map/runs/<dataset>/`` (another protocol's under
    ``<out>/<protocol>/map/runs/<dataset>/``: :func:`record_path`), atomically and as strict JSON;
    returns the paths. Every record is checked first (:func:`check_storable`): one that is not a valid MAP record,
    or whose dataset, method or search is not a plain name, stops the batch with a one-line
    ``ValueError`` before anything is written. A stored record at the same path that a method's
    changed default has made a variant is first kept under its variant's own path
    (:func:`keep_superseded`), so a rerun at the new default never loses it."""
    for record in records:
        check_storable(record)
    paths = []
    for record in records:
        path = record_path(out, record)
        keep_superseded(path, record, out)
        paths.append(write_record(path, record))
    return paths


def check_storable(record) -> None:
    """A one-line ``ValueError`` unless ``record`` is a MAP record that passes the schema
    (:data:`protocols.records.SCHEMAS`) and whose names can be used in a path: the dataset names a
    folder under ``out``, so ``../x`` or ``a/b`` would be stored elsewhere."""
    if not isinstance(record, dict):
        raise ValueError(f"refusing to store a record that is not an object: {type(record).__name__}")
    check_name(record.get("dataset"), "dataset")
    check_name(record.get("method"), "method")
    check_name(record.get("search"), "search", SEARCH_LABEL)
    problem = check_record(record, "map")
    if problem:
        raise ValueError(f"refusing to store the {record['method']} record of {record['dataset']}: {problem}")


def cpu_threads() -> dict:
    """This process's thread counts now: ``{"blas": n, "openmp": m}`` (the largest of each kind of
    pool loaded; a kind not loaded yet is left out). :func:`common.threads.pin_threads` sets both."""
    from threadpoolctl import threadpool_info

    counts = {}
    for pool in threadpool_info():
        if pool.get("user_api") in ("blas", "openmp"):
            counts[pool["user_api"]] = max(counts.get(pool["user_api"], 0), int(pool["num_threads"]))
    return dict(sorted(counts.items()))


def record_threads(record: dict) -> dict:
    """The thread counts a record ran with: its ``threads``; for records from before that field,
    ``torch_threads``, which the commands set together with BLAS's and OpenMP's (``pin_threads``, or
    all left at the core count); ``{}`` (unknown: matches any count) for records older still."""
    threads = record.get("threads")
    if isinstance(threads, dict):
        return {k: v for k, v in threads.items() if k in ("blas", "openmp") and isinstance(v, int)}
    count = record.get("torch_threads")
    return {"blas": count, "openmp": count} if isinstance(count, int) and not isinstance(count, bool) else {}


def same_threads(record: dict, threads: dict) -> bool:
    """Whether ``record`` ran with ``threads`` (every count both know agrees; unknown agrees)."""
    stored = record_threads(record)
    return all(stored[k] == threads[k] for k in stored.keys() & threads.keys())


def keep_superseded(path: Path, record: dict, out) -> Path | None:
    """Before ``record`` is written over ``path``: when the record stored there ran with parameters
    that are no longer the method's defaults (a default changed since), copy it to the path of the
    variant it now is, with ``variant`` set to match, and say so on stderr; returns where it went.
    Same parameters (``--force``) or nothing readable there: nothing to keep. A variant file that
    exists already is left as it is (that run is stored), and the warning says the default's copy
    was not kept twice."""
    from methods import UnknownMethodError

    if not path.is_file():
        return None
    old = read_record(path)
    if old is None or not isinstance(old.get("params"), dict) or "method" not in old or "bits" not in old:
        return None
    try:
        now_variant = variant_of(old["method"], int(old["bits"]), old["params"], old.get("dataset"))
    except (UnknownMethodError, TypeError, ValueError):
        return None
    if now_variant == (record.get("variant") or ""):
        return None
    kept = dict(old, variant=now_variant, superseded={"was": path.name, "at": now_utc()})
    target = record_path(out, kept)
    if target.exists():
        print(f"note: {path.name} ran with {now_variant}, no longer the default; {target.name} holds that "
              f"variant already, so it is kept there and not copied again", file=sys.stderr)
        return target
    write_record(target, kept)
    print(f"note: {path.name} ran with {now_variant}, no longer the default; kept as that variant in "
          f"{target.name}", file=sys.stderr)
    return target


def stored_run(out, dataset, method: str, bits: int, *, seed: int = 0, train_seed: int | None = None,
               params: dict | None = None, topk: int | None = None, threads=None, protocol: str = "standard",
               class_seed: int = 0) -> list[dict] | None:
    """The records a run with these settings would write, if every one of them is stored already,
    for the same split and data (a photo dataset's ``data_sha256``: its lists and images), and,
    under the unseen-class ``protocol``, for each of its databases with the same class split, with
    the parameters a run would use now and, for a shallow method, with the same thread counts
    (resume); else None.

    ``threads``: the count the run would use (an int, as ``pin_threads`` sets it, or
    :func:`cpu_threads`' dict); None: this process's counts now (a run here); ``"any"``: not
    compared (workers whose counts are not known). A shallow method's numbers can depend on them
    (OPQ's on faiss's OpenMP count: MAP 4.8e-5 apart on digits at 32 bits, 1 thread against 2), so a
    record made with other counts is not this run. A record that does not say (from before the
    thread counts were kept) is taken as made with them. Deep methods are not compared: their model
    cache ignores the thread count, so a rerun would load the same model and give the stored numbers."""
    from methods import get_method_class

    train_seed = seed if train_seed is None else train_seed
    cls = get_method_class(method)
    if cls.deep or threads == "any":
        threads = {}
    elif threads is None:
        threads = cpu_threads()
    elif not isinstance(threads, dict):
        threads = {"blas": int(threads), "openmp": int(threads)}
    model = create_for(dataset.name, method, bits, params)
    identity = {"dataset": dataset.name, "method": method, "bits": bits, "seed": seed, "train_seed": train_seed,
                "variant": variant_of(method, bits, model.get_params(), dataset.name)}
    records = []
    for evaluation, mode in ((e, m) for e in evaluations(dataset, protocol, class_seed) for m in model.searches):
        path = record_path(out, dict(identity, topk=resolve_topk(evaluation.view, topk), search=mode.label,
                                     **evaluation.fields))
        record = read_record(path) if path.is_file() else None
        if (record is None or record.get("split_sha256") != dataset.split_sha256
                or ("data_sha256" in dataset.info and record.get("data_sha256") != dataset.info["data_sha256"])
                or any(record.get(k) != v for k, v in evaluation.fields.items())
                or record.get("train_seed", record.get("seed")) != train_seed or changed_params(record, params)
                or not same_threads(record, threads)):
            return None
        records.append(record)
    return records


def stored(out, dataset: str) -> list[dict]:
    """Every readable MAP record of ``dataset`` under ``out`` (bad files skipped with a warning)."""
    return read_records(runs_folder(out, dataset), required=("dataset", "method", "bits", "search", "map"))
