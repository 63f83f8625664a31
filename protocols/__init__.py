"""Protocol runners (``python -m protocols.map``, ...) and the metrics they share.

The project runs from its checkout and installs no top-level packages (CONTRIBUTING.md:
installing), because their names are generic: ``datasets`` is also Hugging Face's. Importing this
package first checks that the others are this checkout's, so another distribution's ``datasets``
found first on the path fails here in one line naming it and the fix (under ``python -m
protocols.X``, Python's one line, no traceback), not later as another package's error.
"""
import importlib.util
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
#: the checkout's other top-level packages
PACKAGES = ("common", "datasets", "search", "deep", "methods")


def foreign_package() -> tuple[str, str] | None:
    """``(name, where the path finds it)`` of the first of :data:`PACKAGES` that is not this
    checkout's folder of that name, or None. Locates without importing."""
    for name in PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
            spec = None
        if spec is None:
            return name, "nowhere on the path"
        folders = [Path(folder).resolve() for folder in spec.submodule_search_locations or ()]
        if (CHECKOUT / name).resolve() not in folders:
            return name, str(folders[0] if folders else spec.origin)
    return None


if (_foreign := foreign_package()) is not None:
    # name="protocols": python -m protocols.X then reports it as one line instead of a traceback
    raise ImportError(f"package {_foreign[0]!r} is found at {_foreign[1]}, not in this checkout {CHECKOUT}: another "
                      f"distribution's (Hugging Face's datasets?) comes first on the path; run from the checkout's "
                      f"root (cd {CHECKOUT} && python -m protocols.map ...) or put it first (PYTHONPATH={CHECKOUT})",
                      name="protocols")
