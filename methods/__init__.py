"""Method registry: every hashing method is one module here that registers itself.

``@register("itq")`` on a class; ``list_methods()`` names them; ``create_method("itq", nbits=32)``
builds one. Modules in this package are imported on first use, so adding a method touches
nothing but its own file.
"""
from __future__ import annotations

import importlib
import pkgutil

from common.registry import Registry, UnknownNameError


class UnknownMethodError(UnknownNameError):
    pass


_LOADED = []


def _load_all():
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name not in ("base", "deep_method"):
            importlib.import_module(f"{__name__}.{info.name}")
    _LOADED.append(True)


_REGISTRY = Registry("method", error=UnknownMethodError, load=_load_all)
#: class decorator: make ``cls`` available as ``name`` in the registry (``@register("itq")``)
register = _REGISTRY.register


def list_methods(paper: bool = False, beyond: bool = False) -> list[str]:
    """Registered method names; ``paper=True``: only those of the paper's Table I (``paper_table1``);
    ``beyond=True``: only those after the paper (``beyond_paper``)."""
    return [name for name, cls in _REGISTRY.items()
            if (cls.paper_table1 or not paper) and (cls.beyond_paper or not beyond)]


def get_method_class(name: str) -> type:
    return _REGISTRY.get(name)


def create_method(name: str, **params):
    """Instantiate the method registered as ``name`` with keyword ``params`` (the only factory)."""
    return get_method_class(name)(**params)
