"""The one interface every hashing method follows (scikit-learn shaped).

``__init__`` stores parameters only; ``fit(X, y=None)`` learns and returns ``self``; ``encode(X)``
returns packed ``uint8`` codes of shape ``(n, nbits // 8)``; learned state ends in ``_``.

``X`` is the dataset's array ``(n, channels, height, width)`` (or ``(n, d)`` for plain vectors);
shallow methods flatten it with :func:`as_features`. ``y`` is a multi-hot label matrix ``(n, C)``.

Search: a method's rows are scored with the searches it declares as data in ``searches``
(:class:`search.SearchMode`: an index name and its search parameters; the first is the default,
Hamming ranking unless a method says otherwise); :meth:`HashMethod.build_index` builds them through
:func:`search.create_index`, adding what the index needs from the fitted method
(:meth:`HashMethod.index_build_params`: HDHash's levels, OPQ's codebooks).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from search import SearchMode, create_index


class NotFittedError(RuntimeError):
    pass


def check_nbits(nbits) -> int:
    """Return ``nbits`` as an int, or raise ValueError unless it is a positive multiple of 8."""
    if isinstance(nbits, bool) or not isinstance(nbits, (int, np.integer)) or nbits <= 0 or nbits % 8:
        raise ValueError(f"bit length must be a positive multiple of 8, got {nbits!r}")
    return int(nbits)


def pack_codes(real_values) -> np.ndarray:
    """Binarise real outputs (bit = 1 where value > 0, PROTOCOL.md) and pack them to uint8.

    Bit j of a code is bit ``7 - j % 8`` of byte ``j // 8`` (numpy's big-endian packbits).
    """
    values = np.asarray(real_values)
    if values.ndim != 2 or values.shape[1] % 8:
        raise ValueError(f"expected (n, nbits) with nbits a multiple of 8, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("cannot binarise NaN or infinite outputs; the model diverged or the input has NaNs")
    return np.packbits(values > 0, axis=1)


def unpack_codes(codes: np.ndarray, nbits: int | None = None) -> np.ndarray:
    """Packed uint8 codes -> {0, 1} uint8 matrix (n, nbits)."""
    bits = np.unpackbits(np.asarray(codes, dtype=np.uint8), axis=1)
    return bits if nbits is None else bits[:, :nbits]


def as_features(X) -> np.ndarray:
    """Flatten images ``(n, ...)`` to float64 feature rows ``(n, d)`` and refuse NaNs."""
    X = np.asarray(X)
    X = X.reshape(len(X), -1).astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        raise ValueError("input features contain NaN or infinite values; clean the data first")
    return X


# -- parameter rules: a method declares them as data (``param_rules``), check_params applies them --
@dataclass(frozen=True)
class Int:
    """An integer (not a bool) >= ``low``, or None where ``none`` is allowed."""

    low: int = 0
    none: bool = False

    def check(self, name, value):
        if value is None and self.none:
            return
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < self.low:
            raise ValueError(f"{name} must be an integer >= {self.low}{' or None' if self.none else ''}, "
                             f"got {value!r}")


@dataclass(frozen=True)
class Real:
    """A finite number in ``(low, high]`` (``[low, high]`` with ``closed_low``), or None where allowed."""

    low: float = 0.0
    high: float = math.inf
    closed_low: bool = False
    none: bool = False

    def check(self, name, value):
        if value is None and self.none:
            return
        ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
              and math.isfinite(value) and (value >= self.low if self.closed_low else value > self.low)
              and value <= self.high)
        if not ok:
            bounds = f"{'[' if self.closed_low else '('}{self.low:g}, {self.high:g}]"
            raise ValueError(f"{name} must be a finite number in {bounds}{' or None' if self.none else ''}, "
                             f"got {value!r}")


@dataclass(frozen=True)
class Flag:
    """True or False (not 1 or 'yes')."""

    none: bool = False

    def check(self, name, value):
        if not (isinstance(value, (bool, np.bool_)) or (value is None and self.none)):
            raise ValueError(f"{name} must be True or False{' or None' if self.none else ''}, got {value!r}")


@dataclass(frozen=True)
class Choice:
    options: tuple

    def check(self, name, value):
        if value not in self.options:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, self.options))}, got {value!r}")


def squared_distances(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``||x_i - y_j||^2`` for all pairs, clipped at 0 against rounding."""
    d2 = (X ** 2).sum(1)[:, None] + (Y ** 2).sum(1)[None, :] - 2.0 * (X @ Y.T)
    return np.maximum(d2, 0.0)


def rbf_features(X: np.ndarray, anchors: np.ndarray, denominator: float, chunk: int = 8192) -> np.ndarray:
    """Gaussian kernel features ``exp(-||x - a_j||^2 / denominator)`` ``(n, m)``, in row chunks so the
    distance matrix stays small (KSH's and SDH's anchor features)."""
    out = np.empty((len(X), len(anchors)))
    for start in range(0, len(X), chunk):
        out[start:start + chunk] = np.exp(-squared_distances(X[start:start + chunk], anchors) / denominator)
    return out


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal matrix (QR of a Gaussian matrix, signs fixed so it is Haar-distributed)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


class HashMethod:
    """Base class: parameter handling, the fitted check and default Hamming search."""

    name = "base"  # set by @register
    supervised = False
    deep = False
    #: search modes this method's rows are scored with; the first is the default
    searches: tuple[SearchMode, ...] = (SearchMode("hamming"),)
    #: Table I of the HDHash paper compares this method (``list_methods(paper=True)``)
    paper_table1 = False
    #: a method after the HDHash paper (DPSH, GreedyHash, CSQ, OrthoHash): Table I's "beyond the
    #: paper" block (``list_methods(beyond=True)``)
    beyond_paper = False
    #: parameters that change how a run executes, not the model (device, threads, progress, cache):
    #: left out of a model's cache key and of a record's identity
    runtime_params: tuple[str, ...] = ()
    #: parameters added after models and codes were cached, at the value that reproduces the behaviour
    #: before them: left out of cache keys at that value (:meth:`cache_params`), so those caches stay valid
    neutral_params: dict = {}
    #: keyword parameters that make ``fit`` take seconds on the synthetic set (contract tests)
    fast_params: dict = {}

    def __init__(self, nbits: int = 32, random_state: int = 0):
        self.nbits = nbits
        self.random_state = random_state

    # -- parameters -----------------------------------------------------------------------
    @classmethod
    def get_param_names(cls) -> list[str]:
        """The parameters of ``__init__`` along the class hierarchy (a class whose ``__init__`` takes
        ``**kwargs`` passes them on to its base's), in order: what ``get_params`` reads and ``--param``
        may set (scikit-learn's ``get_params`` contract, public so no caller needs a private helper)."""
        names = []
        for klass in cls.__mro__:
            if klass is object:
                continue
            sig = inspect.signature(klass.__init__)
            for p in sig.parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names:
                    names.append(p.name)
            if "kwargs" not in sig.parameters:
                break
        return names

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in self.get_param_names()}

    def cache_params(self) -> dict:
        """``get_params()`` without the parameters at their neutral value (``neutral_params``)."""
        return {k: v for k, v in self.get_params().items()
                if not (k in self.neutral_params and v == self.neutral_params[k])}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    #: ``{parameter: rule}`` (:class:`Int`, :class:`Real`, :class:`Choice`), merged along the class
    #: hierarchy and applied by :meth:`check_params`
    param_rules: dict = {"random_state": Int(0)}

    def check_params(self):
        """Raise ValueError (one line saying what to pass) unless the parameters can be fitted;
        cheap, so commands call it before any work. Declare rules in ``param_rules``; override for
        checks that span several parameters."""
        check_nbits(self.nbits)
        rules = {}
        for klass in reversed(type(self).__mro__):
            rules.update(getattr(klass, "param_rules", {}) if "param_rules" in vars(klass) else {})
        for name, rule in rules.items():
            rule.check(f"{self.name} {name}", getattr(self, name))

    # -- contract ---------------------------------------------------------------------------
    def fit(self, X, y=None):
        raise NotImplementedError

    def encode(self, X) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self, *attributes: str):
        missing = [a for a in attributes if not hasattr(self, a)]
        if missing:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(X, y) before encode")

    @property
    def fit_info(self) -> dict:
        """Extra facts about the last fit for the result row (e.g. the chosen epoch)."""
        return getattr(self, "fit_info_", {})

    # -- search -----------------------------------------------------------------------------
    def encode_queries(self, X):
        """What the index's ``rank`` takes for queries: the packed codes, unless overridden."""
        return self.encode(X)

    def index_build_params(self, index: str) -> dict:
        """What index ``index`` needs from the fitted method beyond the codes (none by default)."""
        return {}

    def build_index(self, db_codes: np.ndarray, search: SearchMode | None = None):
        """The index of ``search`` (default: the method's first) over ``db_codes``; any search
        parameters on an index kind the method declares are accepted (e.g. another keep ratio)."""
        mode = self.searches[0] if search is None else search
        if mode.index not in {m.index for m in self.searches}:
            raise ValueError(f"{self.name} searches with {', '.join(m.label for m in self.searches)}, not {mode.label}")
        return create_index(mode.index, db_codes, **self.index_build_params(mode.index), **mode.params)
