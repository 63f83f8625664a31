"""A registry of named plugins (methods, indexes, datasets, backbones), filled by a decorator.

``registry.register("name")`` on a class or builder function records it (a class also gets its
``name`` attribute); ``registry.get(name)`` returns it or raises the registry's error, whose
message lists the valid names; ``registry.names()`` lists them. ``load``, if given, is called
before a lookup, so plugins in modules not yet imported register themselves first.
"""
from __future__ import annotations


class UnknownNameError(KeyError):
    def __str__(self):  # KeyError would quote the message
        return self.args[0]


class Registry:
    def __init__(self, kind: str, plural: str | None = None, error: type = UnknownNameError, load=None):
        self.kind, self.plural, self.error, self._load = kind, plural or f"{kind}s", error, load
        self._entries: dict = {}

    def register(self, name: str):
        def decorator(obj):
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} name {name!r} registered twice")
            if isinstance(obj, type):
                obj.name = name
            self._entries[name] = obj
            return obj

        return decorator

    def names(self) -> list[str]:
        if self._load:
            self._load()
        return sorted(self._entries)

    def items(self):
        self.names()
        return sorted(self._entries.items())

    def get(self, name: str):
        if self._load:
            self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; valid {self.plural}: {', '.join(self.names())}") from None

    def __contains__(self, name) -> bool:
        return name in self.names()
