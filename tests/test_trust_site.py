"""The results site under hostile input (issue 29, items 1 and 2): the build never deletes what it did not
write, and no value from a record reaches a page as markup. The same pages in Chromium, with a hostile
record: ``tests/test_site.py::test_hostile_records_show_as_text``."""
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from protocols import site as site_command
from protocols import site_build, site_efficiency, site_glossary, site_leaderboard, site_map, site_render
from protocols.site_folder import MANIFEST

ROOT = Path(__file__).resolve().parent.parent
#: closes an attribute, opens an element with a handler, opens a comment, closes a script block
HOSTILE = "\"'><img src=x onerror=window.__pwned=1><!--<script></script><script>window.__pwned=1</script>"


def _store(out: Path, map_patterns=("lsh-16-*",), efficiency_patterns=("*-n10000-*",)) -> Path:
    """A small results folder: a few committed records of fashion-mnist."""
    for kind, patterns in (("map", map_patterns), ("efficiency", efficiency_patterns)):
        source, target = ROOT / "results" / kind / "runs" / "fashion-mnist", out / kind / "runs" / "fashion-mnist"
        target.mkdir(parents=True)
        for pattern in patterns:
            for path in sorted(source.glob(pattern + ".json")):
                shutil.copy(path, target / path.name)
    return out


def _not_the_sites(folder: Path) -> dict:
    """A folder holding what a site build must never touch: a ``.git`` and someone's document."""
    (folder / ".git" / "objects").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".git" / "objects" / "ab").write_bytes(b"\x00object")
    (folder / "mydocs").mkdir()
    (folder / "mydocs" / "thesis.txt").write_text("three years of work\n")
    return _snapshot(folder)


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(returned: int, err: str):
    lines = err.strip().splitlines()
    assert returned == 2, err
    assert len(lines) == 1 and "did not write" in lines[0] and ".git/" in lines[0], err
    assert "Traceback" not in err


# -- 1. the site build owns only what it wrote -------------------------------------------------------------
def test_site_build_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    from protocols import report

    out = _store(tmp_path / "results")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    before = _not_the_sites(checkout)
    # --site at a checkout, by the real command line: exit 2, one line, nothing written or deleted
    done = subprocess.run([sys.executable, "-m", "protocols.site", "--out", str(out), "--site", str(checkout)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    _refused(done.returncode, done.stderr)
    assert _snapshot(checkout) == before

    # --out O --site O: the records and the documents beside them stay
    records = _snapshot(out)
    before = _not_the_sites(out)
    _refused(site_command.main(["--out", str(out), "--site", str(out)]), capsys.readouterr().err)
    assert _snapshot(out) == before and all(before[name] == data for name, data in records.items())

    # make report's site (<out>/site) holding a .git and a document
    shutil.rmtree(out / ".git")
    shutil.rmtree(out / "mydocs")
    (out / "site").mkdir()
    before = _not_the_sites(out / "site")
    _refused(report.main(["--out", str(out), "--readme", "none"]), capsys.readouterr().err)
    assert _snapshot(out / "site") == before


def test_site_build_removes_stale_files_of_its_own_only(tmp_path):
    from protocols.runner import UsageError

    out = _store(tmp_path / "results", map_patterns=("lsh-16-*",), efficiency_patterns=())
    (out / "map" / "runs" / "digits").mkdir()
    for path in sorted((out / "map" / "runs" / "fashion-mnist").glob("*.json")):
        shutil.copy(path, out / "map" / "runs" / "digits" / path.name)
    site = tmp_path / "site"
    site.mkdir()  # an empty folder is fine
    written = site_build.build_site(out, site)
    manifest = json.loads((site / MANIFEST).read_text())["files"]
    assert sorted(manifest) == sorted(p.relative_to(site).as_posix() for p in written[:-1])
    assert (site / "map-digits.html").is_file()

    # the records of digits gone: its pages go, every other file of the site stays; a temporary file of the
    # atomic writer left by a build cut short is the build's own
    shutil.rmtree(out / "map" / "runs" / "digits")
    (site / ".index.html.4242.k2j_8x.tmp").write_text("cut short")
    site_build.build_site(out, site)
    assert not (site / "map-digits.html").exists() and not (site / "records-digits.html").exists()
    assert (site / "map-fashion-mnist.html").is_file()
    assert "map-digits.html" not in json.loads((site / MANIFEST).read_text())["files"]

    # a file put there since: refused, kept
    (site / "assets" / "mine.js").write_text("// mine\n")
    with pytest.raises(UsageError, match=r"did not write \(assets/mine.js\)"):
        site_build.build_site(out, site)
    assert (site / "assets" / "mine.js").read_text() == "// mine\n"


@pytest.mark.parametrize("listed", [["../outside.txt"], ["assets/../../outside.txt"], ["/tmp/x"], "all"])
def test_a_manifest_naming_other_files_is_refused(tmp_path, capsys, listed):
    outside = tmp_path / "outside.txt"
    outside.write_text("not the site's\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / MANIFEST).write_text(json.dumps({"files": listed}))
    out = _store(tmp_path / "results", efficiency_patterns=())
    returned = site_command.main(["--out", str(out), "--site", str(site)])
    err = capsys.readouterr().err.strip()
    assert returned == 2 and len(err.splitlines()) == 1 and "is not a manifest" in err, err
    assert outside.read_text() == "not the site's\n" and sorted(p.name for p in site.iterdir()) == [
        MANIFEST]


# -- 2. every value reaching a page is escaped -------------------------------------------------------------
def test_page_data_cannot_close_its_script_block():
    data = {"z": HOSTILE, "a": ["</script>", "<!--", "&amp;"], "nan": float("nan"), HOSTILE: 1}
    text = str(site_render.script_json(data))
    assert not set("<>&") & set(text)
    assert json.loads(text) == {"z": HOSTILE, "a": ["</script>", "<!--", "&amp;"], "nan": None, HOSTILE: 1}
    assert text.index('"a"') < text.index('"nan"') < text.index('"z"'), "keys not sorted"
    assert text == str(site_render.script_json(dict(reversed(list(data.items())))))


class _Elements(HTMLParser):
    """The elements, attributes, comments and text of a page, as a browser's parser first sees them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.comments, self.text, self.scripts = [], 0, [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_comment(self, data):
        self.comments += 1

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def _hostile_values(values: dict) -> dict:
    """``values`` of a page with every number and string (n_query, n_train, topk, repeats, the dataset's
    name, ...) and every list of strings replaced by the payload, and a row of every kind of cell part."""
    hostile = {}
    for key, value in values.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = HOSTILE
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = [HOSTILE]
        elif isinstance(value, list) and value and all(isinstance(v, site_render.Row) for v in value):
            parts = [site_render.Part(kind, HOSTILE, HOSTILE, HOSTILE) for kind in
                     ("text", "swatch", "link", "record-link", "small", "code", "mark", "term", "details")]
            value = value + [site_render.Row([site_render.Cell(tuple(parts), HOSTILE, (HOSTILE,), "")], HOSTILE)]
        elif key == "sections":  # (database size, its plots)
            value = [(HOSTILE, plot_ids) for _, plot_ids in value]
        elif key == "tables":  # Table U's: {table id: (headers, rows)}, every header and a row of every part
            value = {name: ([HOSTILE] * len(headers), _hostile_values({"rows": rows})["rows"])
                     for name, (headers, rows) in value.items()}
        elif key in ("paper_rows", "line_styles"):
            value = [(HOSTILE,) * len(value[0])]
        hostile[key] = value
    return hostile


def test_templates_escape_every_value(tmp_path):
    out = _store(tmp_path / "results")
    pages = [site_build.index_page(out, ["fashion-mnist"], ["fashion-mnist"]),
             site_map.map_page(out, "fashion-mnist"), site_map.records_page(out, "fashion-mnist"),
             site_efficiency.efficiency_page(out, "fashion-mnist"),
             site_leaderboard.leaderboard_page(out, ["fashion-mnist"]), site_glossary.glossary_page()]
    for page in pages:
        _assert_escaped(page)


def _assert_escaped(page) -> None:
    """``page`` rendered with every value hostile shows the payload as text and runs none of it."""
    values = _hostile_values(page.values)
    data = {"plots": [], "records": {HOSTILE: {"href": HOSTILE, "fields": {"n_query": HOSTILE}}}}
    html = site_render.render_page(site_render.Page(HOSTILE, page.template, values, data), [(HOSTILE, HOSTILE)])
    parsed = _Elements()
    parsed.feed(html)
    tags = [tag for tag, _ in parsed.elements]
    assert "img" not in tags and tags.count("script") == 3, (page.template, tags)
    assert not [(tag, a) for tag, attrs in parsed.elements for a in attrs if a.startswith("on")], page.template
    assert parsed.comments == 0, page.template
    assert HOSTILE in "".join(parsed.text), f"{page.template}: the payload does not show as text"
    assert json.loads(parsed.scripts[-1]) == data


def test_the_table_u_page_escapes_every_value(tmp_path, monkeypatch):
    """Table U's page (issue 32) under the same hostile values: built from unseen-class records of digits."""
    import common.files
    from protocols import runner
    from protocols.site_unseen import unseen_page

    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "results"
    digits = runner.load("digits")
    for seed in (0, 1):
        runner.store(runner.run(digits, "lsh", 16, train_seed=seed, protocol="unseen"), out)
    page = unseen_page(out, "digits")
    assert page is not None and page.template == "unseen.html"
    _assert_escaped(page)
