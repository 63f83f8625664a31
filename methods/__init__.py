"""Method registry: every hashing method is one module here that registers itself.

``@register("itq")`` on a class; ``list_methods()`` names them; ``create_method("itq", nbits=32)``
builds one. Modules in this package are imported on first use, so adding a method touches
nothing but its own file.
"""
from __future__ import annotations

import importlib
import pkgutil

_REGISTRY: dict[str, type] = {}
_LOADED = False


class UnknownMethodError(KeyError):
    def __str__(self):  # KeyError would quote the message
        return self.args[0]


def register(name: str):
    """Class decorator: make ``cls`` available as ``name`` in the registry."""

    def decorator(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_all():
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name not in ("base", "deep_method"):
            importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def list_methods(paper: bool = False) -> list[str]:
    """Registered method names; ``paper=True``: only those of the paper's Table I (``paper_table1``)."""
    _load_all()
    return sorted(name for name, cls in _REGISTRY.items() if cls.paper_table1 or not paper)


def get_method_class(name: str) -> type:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; valid methods: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_method(name: str, **params):
    """Instantiate the method registered as ``name`` with keyword ``params``."""
    return get_method_class(name)(**params)
