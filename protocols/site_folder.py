"""The results site's folder: what a build owns, by the manifest it keeps there.

A build writes only into an empty or new folder or one it built before, and removes only files an
earlier build listed in ``.hashbench-site-manifest.json``: ``python -m protocols.site --site .`` in a
checkout once deleted everything not written by that build, ``.git`` included.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from common.files import TMP_SUFFIX, atomic_write_text

#: the list of files the builds wrote into a site folder, kept in that folder
MANIFEST = ".hashbench-site-manifest.json"
#: the folders a build writes into: scripts and styles, and the tables' downloads (CSV, JSON)
FOLDERS = ("assets", "data")
#: what a build writes: pages, and files in :data:`FOLDERS`
_SITE_FILE = re.compile(r"((assets|data)/)?(?!\.\.?$)[^/\\\0]+")
#: a temporary file :mod:`common.files` writes before renaming it over ``<target>`` (a build cut short leaves it)
_TEMP = re.compile(r"\.(?P<target>.+)\.\d+\.[a-z0-9_]+" + re.escape(TMP_SUFFIX))


def owned_files(site) -> set[str]:
    """The files earlier builds wrote into ``site`` (relative names, from the folder's manifest), after
    checking that it holds nothing else: a folder with anything a build did not write (a ``.git``, a
    record, a document, a link) is refused with a one-line :class:`~protocols.runner.UsageError` before
    anything is written. A missing or empty folder owns nothing."""
    from protocols.runner import UsageError

    site, manifest = Path(site), Path(site) / MANIFEST
    if not site.exists() and not site.is_symlink():
        return set()
    if not site.is_dir():
        raise UsageError(f"{site} is not a folder; build the site into an empty or new folder (--site)")
    owned = []
    if manifest.exists() or manifest.is_symlink():
        try:
            owned = None if manifest.is_symlink() else json.loads(manifest.read_text(encoding="utf-8"))["files"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            owned = None
        if not isinstance(owned, list) or not all(isinstance(f, str) and _SITE_FILE.fullmatch(f) for f in owned):
            raise UsageError(f"{manifest} is not a manifest this site build wrote; build the site into an empty "
                             "or new folder (--site)")
    owned, foreign = set(owned), []
    for root, folders, files in os.walk(site):
        prefix = "" if Path(root) == site else Path(root).relative_to(site).as_posix() + "/"
        mine = [f for f in folders if prefix == "" and f in FOLDERS and not os.path.islink(os.path.join(root, f))]
        foreign += [prefix + f + "/" for f in sorted(set(folders) - set(mine))]
        folders[:] = mine  # a foreign folder is named once, never walked
        for name in sorted(files):
            temp = _TEMP.fullmatch(name)
            if (os.path.islink(os.path.join(root, name)) or prefix + name not in owned | {MANIFEST}
                    and not (temp and prefix + temp["target"] in owned | {MANIFEST})):
                foreign.append(prefix + name)
    if foreign:
        shown = ", ".join(sorted(foreign)[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UsageError(f"{site} holds files the site build did not write ({shown}); it builds only into an "
                         f"empty or new folder or one it built before (listed in its {MANIFEST}), and never "
                         "deletes anything else")
    return owned


def write_manifest(site: Path, files) -> Path:
    manifest = {"files": sorted(files),
                "what": "the files python -m protocols.site wrote here; a rebuild removes only these"}
    return atomic_write_text(site / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
