"""The unseen-class protocol (issue 32): the seeded class split, what reaches training and validation,
the queries and the two databases, the classifier's codes, records under their own root with the split's
hash, resume, Table U, and the one-line refusals. Digits and tiny settings: about 40 s."""
from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pytest

import common.files
from datasets import Dataset, DatasetError, one_hot
from datasets.class_split import DATABASES, class_split, unseen_class_data
from protocols import map as map_protocol
from protocols import runner
from protocols.records import check_record

FAST_DEEP = {"epochs": 1, "progress": False, "device": "cpu", "num_threads": 1, "cache": False}


def _classes(dataset, indices) -> set[int]:
    return set(np.flatnonzero(dataset.labels[indices].any(axis=0)).tolist())


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    # splits and any model a run caches stay in the test's folder
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")


def test_class_split_is_seeded_sized_and_hashed():
    split = class_split(10, seed=0)
    assert len(split.seen) == 7 and len(split.unseen) == 3
    assert sorted(split.seen + split.unseen) == list(range(10))
    assert class_split(10, seed=0) == split and class_split(10, seed=0).sha256 == split.sha256
    others = [class_split(10, seed=s) for s in range(1, 6)]
    assert any(o.unseen != split.unseen for o in others)
    assert all(o.sha256 != split.sha256 for o in others if o.unseen != split.unseen)
    # the hash is the content's: the same classes under another seed hash the same
    assert all(o.sha256 == split.sha256 for o in others if o.unseen == split.unseen)
    assert (len(class_split(2).seen), len(class_split(2).unseen)) == (1, 1)
    assert (len(class_split(100).seen), len(class_split(100).unseen)) == (70, 30)
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_split(1)


def test_training_queries_and_databases_follow_the_class_split(digits):
    data = unseen_class_data(digits, class_seed=0)
    seen, unseen = set(data.classes.seen), set(data.classes.unseen)
    split = digits.split
    # training: every seen-class training item, and nothing else
    assert _classes(digits, data.train) == seen
    assert set(data.train) == {i for i in split.train if _classes(digits, [i]) <= seen}
    X, labels = data.training_part()
    assert len(X) == len(data.train) and labels.shape == (len(data.train), len(seen))
    assert (labels.sum(axis=1) == 1).all()  # cut to the seen columns, no item lost its class
    # queries: every unseen-class query item
    assert _classes(digits, data.query) == unseen
    assert set(data.query) == {i for i in split.query if _classes(digits, [i]) <= unseen}
    # unseen@unseen: only the unseen classes' database items; unseen@all: the whole database
    assert _classes(digits, data.databases["unseen"]) == unseen
    assert set(data.databases["unseen"]) == {i for i in split.database if _classes(digits, [i]) <= unseen}
    assert np.array_equal(data.databases["all"], split.database)
    assert _classes(digits, data.databases["all"]) == seen | unseen
    for database in DATABASES:  # each database is found inside the database part that is encoded once
        assert np.array_equal(split.database[data.database_positions(database)], data.databases[database])


def _tagged(digits) -> Dataset:
    """Digits with each item's index written into its first pixel, so what a method is given can be named."""
    X = digits.X.copy()
    X[:, 0, 0, 0] = (np.arange(len(X)) + 1) / 10_000
    return replace(digits, X=X)


def _ids(X) -> set[int]:
    return set((np.rint(np.asarray(X)[:, 0, 0, 0] * 10_000) - 1).astype(int).tolist())


@pytest.mark.parametrize("method", ["hashnet", "lsh"])
def test_no_unseen_class_item_reaches_training_or_validation(method, digits, monkeypatch):
    from deep import trainer
    from methods import get_method_class

    tagged = _tagged(digits)
    given = {}
    if get_method_class(method).deep:
        real = trainer.train

        def train(model_method, model, X, y, *args, **kwargs):  # validation is held out of exactly these
            given["X"], given["y"] = X, y
            return real(model_method, model, X, y, *args, **kwargs)

        monkeypatch.setattr(trainer, "train", train)
    else:
        cls = get_method_class(method)
        real_fit = cls.fit

        def fit(self, X, y=None):
            given["X"], given["y"] = X, y
            return real_fit(self, X, y)

        monkeypatch.setattr(cls, "fit", fit)
    records = runner.run(tagged, method, 16, params=FAST_DEEP, protocol="unseen")
    data = unseen_class_data(tagged)
    assert _ids(given["X"]) == set(data.train.tolist())
    assert _classes(tagged, sorted(_ids(given["X"]))) == set(data.classes.seen)
    if given["y"] is not None:
        assert given["y"].shape[1] == len(data.classes.seen)
    if get_method_class(method).deep:
        assert records[0]["fit_info"]["n_val"] > 0  # the trainer's validation items came from these
    assert {r["n_train"] for r in records} == {len(data.train)}


def test_every_record_names_the_same_class_split_and_has_tie_aware_map(digits):
    split = class_split(10, seed=0)
    records = [r for method, seed in (("lsh", 0), ("lsh", 1), ("itq", 0))
               for r in runner.run(digits, method, 16, train_seed=seed, protocol="unseen")]
    assert len(records) == 3 * len(DATABASES)
    for record in records:
        assert record["protocol"] == "unseen" and record["class_seed"] == 0
        assert record["class_split_sha256"] == split.sha256
        assert (record["seen_classes"], record["unseen_classes"]) == (list(split.seen), list(split.unseen))
        assert record["split_sha256"] == digits.split_sha256
        assert isinstance(record["map_tie_aware"], float) and not np.isnan(record["map_tie_aware"])
        assert record["n_query"] == 10 * len(split.unseen)
        assert check_record(record, "map") is None
    data = unseen_class_data(digits)
    assert {r["database"]: r["n_db"] for r in records} == {d: len(data.databases[d]) for d in DATABASES}
    assert {r["database"]: r["topk"] for r in records} == {d: len(data.databases[d]) for d in DATABASES}  # MAP@all
    other = runner.run(digits, "lsh", 16, protocol="unseen", class_seed=1)
    assert {r["class_split_sha256"] for r in other} == {class_split(10, seed=1).sha256} != {split.sha256}


def test_classifier_codes_are_the_seen_classes_codewords(digits):
    from methods import create_method

    part = runner.training_part(digits, "unseen")
    model, _ = runner.fit(digits, "classifier", 16, params=create_method("classifier").fast_params, part=part)
    assert model.n_classes_ == 7 and model.codewords_.shape[0] == 7
    data = unseen_class_data(digits)
    codes = np.unpackbits(model.encode(data.view("all").part("database")[0]), axis=1)
    codewords = (model.codewords_.numpy() > 0).astype(np.uint8)
    # every item, of a seen class or not, gets the codeword of a seen class: the unseen ones too
    assert {tuple(c) for c in codes} <= {tuple(w) for w in codewords}
    unseen_codes = np.unpackbits(model.encode(data.view("unseen").part("query")[0]), axis=1)
    assert {tuple(c) for c in unseen_codes} <= {tuple(w) for w in codewords}


def test_map_unseen_stores_both_databases_apart_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "results"
    argv = ["--dataset", "digits", "--methods", "lsh,hashnet", "--bits", "16", "--seeds", "0,1",
            "--protocol", "unseen", "--out", str(out)] + [f"--param={k}={v}" for k, v in FAST_DEEP.items()]
    assert map_protocol.main(argv) == 0
    folder = out / "unseen" / "map" / "runs" / "digits"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    assert len(records) == 2 * 2 * len(DATABASES)  # (method, seed) x database, from one training each
    assert sorted((r["method"], r["train_seed"], r["database"]) for r in records) == sorted(
        (m, s, d) for m in ("lsh", "hashnet") for s in (0, 1) for d in DATABASES)
    for method in ("lsh", "hashnet"):  # both databases' records come from one trained model
        for seed in (0, 1):
            fits = {json.dumps(r["fit_info"], sort_keys=True) for r in records
                    if r["method"] == method and r["train_seed"] == seed}
            assert len(fits) == 1
    # Table I's readers never see them; Table U is written, Table I is not
    assert not (out / "map" / "runs").exists() and runner.stored(out, "digits") == []
    assert (out / "map" / "digits-unseen.md").is_file() and not (out / "map" / "digits.md").exists()
    assert "wrote" in capsys.readouterr().out

    def no_run(*args, **kwargs):
        raise AssertionError("a stored run was run again")

    monkeypatch.setattr(runner, "run", no_run)
    assert map_protocol.main(argv) == 0
    assert "4 of 4 runs stored already" in capsys.readouterr().err
    assert len(list(folder.glob("*.json"))) == len(records)


def test_standard_runs_are_as_before(digits, tmp_path):
    records = runner.run(digits, "lsh", 16)
    assert not {"protocol", "database", "class_seed", "class_split_sha256"} & set(records[0])
    assert records[0]["n_db"] == len(digits.split.database) and records[0]["n_train"] == len(digits.split.train)
    (path,) = runner.store(records, tmp_path)
    assert path == tmp_path / "map" / "runs" / "digits" / "lsh-16-hamming-top1697-seed0.json"


def test_table_u_from_the_unseen_records_with_differences_to_hashnet(digits, tmp_path):
    from protocols.report import build
    from protocols.unseen_tables import write_unseen_report

    assert write_unseen_report(tmp_path, "digits") == []  # nothing stored, nothing written
    for seed in (0, 1, 2):
        runner.store(runner.run(digits, "lsh", 16, train_seed=seed, protocol="unseen"), tmp_path)
        for method in ("hashnet", "classifier"):  # fast settings, stored as the default rows
            records = runner.run(digits, method, 16, train_seed=seed, params=FAST_DEEP, protocol="unseen")
            runner.store([dict(r, variant="") for r in records], tmp_path)
    written = build(tmp_path)
    site = tmp_path / "site"
    assert sorted(p.name for p in written if site not in p.parents) == ["digits-unseen.csv", "digits-unseen.md"]
    assert site / "unseen-digits.html" in written and not (site / "map-digits.html").exists()  # no Table I record
    assert not (tmp_path / "unseen" / "map" / "digits.md").exists()  # not read as a results root of Table I
    text = (tmp_path / "map" / "digits-unseen.md").read_text()
    assert "Table U" in text and "class split seed 0, sha256 " + class_split(10).sha256[:12] in text
    assert ("| method | unseen@unseen 16 bits MAP@all | unseen@unseen 16 bits tie-aware | unseen@all 16 bits MAP@all "
            "| unseen@all 16 bits tie-aware |") in text
    table = text.split("## Difference to hashnet")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ") and " ± " in line]
    assert [line.split(" | ")[0] for line in lines] == ["| hashnet", "| lsh", "| classifier"]  # Table I's, then beyond
    assert all(line.count(" ± ") == line.count("(3)") == 4 for line in lines)
    differences = text.split("## Difference to hashnet")[1]
    for method in ("lsh", "classifier"):
        for name in ("unseen@unseen", "unseen@all"):
            assert f"| {method} | {name} | 16 | " in differences
    assert "read it by tie-aware MAP" in text
    # the site's Table U page shows the same paired differences, cell for cell, and downloads them
    shown = [[c[1].strip() for c in cells] for _, cells in _open(site, "unseen-digits.html").tables["differences"]]
    assert shown[0] == ["database", "method", "bits", "MAP@K minus hashnet", "tie-aware MAP@K minus hashnet"]
    markdown_rows = [line.strip("| ").split(" | ") for line in differences.splitlines() if line.startswith("| ")
                     and " ± " in line]
    assert sorted([m, d, b, x, y] for d, m, b, x, y in shown[1:]) == sorted(markdown_rows)
    assert len(shown) - 1 == 2 * len(DATABASES)
    import pandas as pd

    assert len(pd.read_csv(site / "data" / "unseen-digits.differences.csv")) == 2 * len(DATABASES)

    frame = pd.read_csv(tmp_path / "map" / "digits-unseen.csv")
    assert len(frame) == 3 * 3 * len(DATABASES) and set(frame["database"]) == set(DATABASES)
    assert set(frame["class_split_sha256"]) == {class_split(10).sha256}


# -- Table U's cells are the Markdown module's, and the site shows them ---------------------------------------
@pytest.fixture(scope="module")
def unseen_store(tmp_path_factory, digits):
    """Unseen-class records of digits: LSH over training seeds 0-2 at 16 and 32 bits, ITQ over 0-1 and SH over
    seed 0 (a one-seed row) at 16 bits; and one standard record, so digits has a Table I page too."""
    out = tmp_path_factory.mktemp("unseen-store") / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(common.files, "CACHE_DIR", out.parent / "cache")
        for method, bits, seeds in (("lsh", 16, (0, 1, 2)), ("lsh", 32, (0, 1, 2)), ("itq", 16, (0, 1)),
                                    ("sh", 16, (0,))):
            for seed in seeds:
                runner.store(runner.run(digits, method, bits, train_seed=seed, protocol="unseen"), out)
        runner.store(runner.run(digits, "lsh", 16), out)
    return out


def _unseen_records(out) -> dict[str, dict]:
    folder = out / "unseen" / "map" / "runs" / "digits"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _table_u_cells(text: str) -> dict[tuple[str, str], str]:
    """``{(method, heading): cell}`` of the first Markdown table in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    headings = lines[0].strip("| ").split(" | ")
    rows = [line.strip("| ").split(" | ") for line in lines[1:] if not line.startswith("| method")]
    return {(row[0], heading): value for row in rows for heading, value in zip(headings[1:], row[1:])}


def test_table_u_cells_say_what_they_rest_on_and_bold_the_best_of_a_column(unseen_store):
    """One cell format for every table (protocols.markdown): mean ± sd (n), the one-seed mark and its footnote,
    the best of a column (a database, bits and metric) bold only over two seeds or more."""
    import statistics

    from protocols.unseen_tables import unseen_frame, unseen_markdown

    text = unseen_markdown(unseen_frame(unseen_store, "digits"), "digits")
    found = _table_u_cells(text.split("## Difference to")[0])
    records = list(_unseen_records(unseen_store).values())
    headings = {heading for _, heading in found}
    assert len(headings) == 2 * 2 * 2  # (unseen@unseen, unseen@all) x (16, 32 bits) x (MAP@K, tie-aware MAP@K)
    for heading in headings:
        name, bits, _, metric = heading.split(" ", 3)
        field = "map_tie_aware" if metric == "tie-aware" else "map"
        means = {}
        for method in ("itq", "lsh", "sh"):
            values = [r[field] for r in records if r["method"] == method and r["bits"] == int(bits)
                      and f"unseen@{r['database']}" == name]
            shown = found[(method, heading)]
            if not values:
                assert shown == "–"
                continue
            means[method] = statistics.mean(values), len(values)
            number = f"{means[method][0]:.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")
            assert shown.strip("*").removesuffix("†") == f"{number} ({len(values)})", (heading, method, shown)
            assert shown.endswith("†") == (len(values) == 1) and not (len(values) == 1 and "**" in shown)
        best = max(means.values())
        bold = {m for m, (mean, n) in means.items() if mean == best[0] and n >= 2}
        assert {m for m in means if found[(m, heading)].startswith("**")} == bold, (heading, means)
    assert "† one training seed, so no spread: never bold, never called best." in text


class _Page(HTMLParser):
    """A page's tables (``{id: [(row id, [(cell attributes, text)])]}``), its links and its page data."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables, self.links, self.data, self._table, self._cell, self._script = {}, [], None, None, None, False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._table.append((attrs.get("id"), []))
        elif tag in ("td", "th") and self._table:
            self._cell = [attrs, ""]
        elif tag == "a":
            self.links.append(attrs.get("href"))
        self._script = tag == "script" and attrs.get("id") == "page-data"

    def handle_endtag(self, tag):
        self._script = False
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1][1].append(tuple(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._script:
            self.data = json.loads(data)


def _open(site, name: str) -> _Page:
    return _Page((site / name).read_text(encoding="utf-8"))


def test_the_site_has_a_table_u_page_only_where_unseen_records_are_stored(unseen_store, tmp_path):
    """The site's Table U page: the Markdown table's cells (bold as there), each number opening its records on
    the page, its downloads and filter box; linked from the index, Table I's page, the navigation, the glossary.
    Without unseen-class records the site is the same, byte for byte, as one built without them ever."""
    import shutil

    import pandas as pd

    from protocols.site_build import build_site
    from protocols.unseen_tables import unseen_frame, unseen_markdown

    out = tmp_path / "results"
    shutil.copytree(unseen_store, out)
    site = out / "site"
    build_site(out)
    records = _unseen_records(out)
    page = _open(site, "unseen-digits.html")
    markdown = _table_u_cells(unseen_markdown(unseen_frame(out, "digits"), "digits").split("## Difference to")[0])
    head, *rows = page.tables["table-u"]
    headings = [text for _, text in head[1]]
    assert headings[0] == "method" and {h for _, h in markdown} == set(headings[1:])
    assert [row[1][0][1].strip() for row in rows] == list(dict.fromkeys(method for method, _ in markdown))
    clicked = set()
    for _, cells in rows:
        method = cells[0][1].strip()
        for heading, (attrs, text) in zip(headings[1:], cells[1:]):
            shown = markdown[(method, heading)]
            assert text == shown.replace("**", ""), (method, heading, text, shown)
            assert ("best" in attrs.get("class", "").split()) == shown.startswith("**")
            name, bits, _, _ = heading.split(" ", 3)
            behind = sorted(i for i, r in records.items() if r["method"] == method and r["bits"] == int(bits)
                            and f"unseen@{r['database']}" == name)
            assert sorted(attrs.get("data-records", "").split()) == behind
            clicked.update(behind)
    assert clicked == set(records)  # every record is behind a number of the table
    anchors = {row_id for row_id, _ in page.tables["records"] if row_id}
    assert anchors == {f"u-{i}" for i in records}
    assert {i: entry["href"] for i, entry in page.data["records"].items()} == {
        i: f"unseen-digits.html#u-{i}" for i in records}
    html = (site / "unseen-digits.html").read_text(encoding="utf-8")
    assert 'data-table="table-u"' in html and 'data-table="records"' in html  # the filter boxes
    assert "data/unseen-digits.table-u.csv" in page.links and "data/unseen-digits.records.json" in page.links
    assert "map-digits.html" in page.links and "glossary.html#unseen" in page.links
    download = pd.read_csv(site / "data" / "unseen-digits.table-u.csv")
    assert len(download) == 2 * 2 + 2 + 2 == len(json.loads((site / "data" / "unseen-digits.table-u.json").read_text()))
    lsh = download[(download["column"] == "lsh") & (download["database"] == "unseen@all") & (download["bits"] == 32)]
    values = [r["map"] for r in records.values() if r["method"] == "lsh" and r["bits"] == 32 and r["database"] == "all"]
    assert abs(lsh["map_mean"].iloc[0] - sum(values) / 3) < 1e-6 and lsh["map_n"].iloc[0] == 3
    assert len(pd.read_csv(site / "data" / "unseen-digits.records.csv")) == len(records)
    # linked from the index, the dataset's Table I page and the navigation; its terms in the glossary
    index = _open(site, "index.html")
    assert "unseen-digits.html" in index.links and len(index.tables["unseen"]) == 2
    assert "unseen-digits.html" in _open(site, "map-digits.html").links
    glossary = _open(site, "glossary.html")
    assert {"g-unseen-unseen", "g-unseen-all", "g-class-split"} <= {i for i, _ in glossary.tables["unseen-terms"]}
    assert "unseen@unseen" in head[1][1][0]["title"]  # a heading's glossary text as its tooltip

    # the records gone: the page, its downloads and every mention go, as if there had never been any
    shutil.rmtree(out / "unseen")
    build_site(out)
    fresh = tmp_path / "fresh"
    shutil.copytree(out / "map" / "runs", fresh / "map" / "runs")
    build_site(fresh)
    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert files == {p.relative_to(fresh / "site").as_posix() for p in (fresh / "site").rglob("*") if p.is_file()}
    assert all((site / name).read_bytes() == (fresh / "site" / name).read_bytes() for name in files)
    assert not [name for name in files if "unseen" in name]
    assert not [name for name in files if name.endswith(".html") and "unseen" in (site / name).read_text()]


def _multilabel(digits) -> Dataset:
    labels = digits.labels.copy()
    labels[::7, 0] = True  # every seventh item also of class 0
    return replace(digits, name="digits", labels=labels, multilabel=True)


def _one_class(digits) -> Dataset:
    return replace(digits, labels=one_hot(np.zeros(len(digits.labels), dtype=int), 1))


@pytest.mark.parametrize("make, message", [(_multilabel, "digits is multi-label; the unseen-class protocol needs a "
                                            "single-label dataset"),
                                           (_one_class, "needs at least 2 classes")])
def test_a_dataset_that_cannot_follow_the_protocol_is_refused_in_one_line_before_work(
        make, message, digits, tmp_path, monkeypatch, capsys):
    dataset = make(digits)
    with pytest.raises(runner.UsageError, match=message):
        runner.check_protocol(dataset, "unseen")

    def no_fit(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(runner, "load", lambda *args, **kwargs: dataset)
    monkeypatch.setattr(runner, "fit", no_fit)
    out = tmp_path / "results"
    argv = ["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--protocol", "unseen", "--out", str(out)]
    assert map_protocol.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_fashion_mosaic_is_refused_in_one_line(tmp_path, capsys):
    from datasets.builtin import fashion_mnist_folder

    try:
        fashion_mnist_folder(allow_download=False)
    except DatasetError:
        pytest.skip("Fashion-MNIST is not installed here (fashion-mosaic is built from it)")
    argv = ["--dataset", "fashion-mosaic", "--methods", "lsh", "--bits", "16", "--protocol", "unseen",
            "--out", str(tmp_path / "results")]
    assert map_protocol.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "fashion-mosaic is multi-label" in err and len(err.splitlines()) == 1


def test_record_schema_takes_the_new_fields_and_old_records_still_validate(digits):
    (record,) = [r for r in runner.run(digits, "lsh", 16, protocol="unseen") if r["database"] == "unseen"]
    assert check_record(record, "map") is None
    standard = {k: v for k, v in record.items() if k not in ("protocol", "database", "class_seed",
                                                            "class_split_sha256", "seen_classes", "unseen_classes")}
    assert check_record(standard, "map") is None  # a record of before the protocol: the standard one's
    missing = {k: v for k, v in record.items() if k != "class_split_sha256"}
    assert "no field 'class_split_sha256'" in check_record(missing, "map")
    with pytest.raises(ValueError, match="class_split_sha256"):
        runner.check_storable(missing)
    assert "not one this code reads" in check_record(dict(record, protocol="zero-shot"), "map")
    assert "field 'seen_classes' must be a list" in check_record(dict(record, seen_classes="0 1"), "map")



@pytest.mark.parametrize("flags, message", [
    (["--class-seed", "1"], "--class-seed is the unseen-class split's seed: give it with --protocol unseen"),
    (["--protocol", "unseen", "--class-seed", "-1"], "--class-seed must be a non-negative integer"),
])
def test_bad_class_seed_is_one_line_and_writes_nothing(flags, message, tmp_path, capsys):
    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_the_paper_table_points_at_table_u_where_unseen_records_are_stored(unseen_store, tmp_path):
    from protocols.paper_tables import unseen_pointer

    (line, _) = unseen_pointer(unseen_store, "digits")
    assert "Table U" in line and "(../map/digits-unseen.md)" in line
    assert unseen_pointer(unseen_store, "fashion-mnist") == [] and unseen_pointer(tmp_path, "digits") == []
