"""Raw first, everything else derived: rebuilding the committed results from their raw records gives
the committed derived files byte for byte (tables, CSVs, plots, the paper's tables, the README block)."""
import filecmp
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fashion_mnist_or_skip():
    from datasets import DatasetError, load_dataset

    try:
        load_dataset("fashion-mnist")
    except DatasetError:
        pytest.skip("Fashion-MNIST not installed (make data)")


def test_committed_results_rebuild_byte_for_byte(tmp_path):
    from protocols.report import rebuild_all

    _fashion_mnist_or_skip()
    out = tmp_path / "results"
    shutil.copytree(ROOT / "results", out)
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    written = rebuild_all(out, readme=str(readme), progress=lambda path: None)
    assert written, "nothing was rebuilt"
    differ = [str(Path(p).relative_to(tmp_path)) for p in written
              if not filecmp.cmp(p, ROOT / Path(p).relative_to(tmp_path), shallow=False)]
    assert not differ, f"derived files differ from the committed ones (run make report and commit): {differ}"


def test_rebuild_of_a_subset_store_keeps_every_row(tmp_path):
    """A store holding a few records rebuilds tables with those rows; a later rebuild after more runs
    only adds rows (a derived file is a function of the whole store, never of the last run)."""
    from protocols import map as map_protocol
    from protocols.report import rebuild_all

    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh,itq", "--bits", "16", "--out", str(out)]) == 0
    rebuild_all(out, readme="none", progress=lambda path: None)
    first = (out / "map" / "digits.md").read_text()
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh", "--bits", "32", "--out", str(out)]) == 0
    rebuild_all(out, readme="none", progress=lambda path: None)
    second = (out / "map" / "digits.md").read_text()
    assert "itq" in first and "itq" in second and "| 32 |" in second and "| 16 |" in second


def test_efficiency_records_of_a_new_dataset_get_their_table(tmp_path):
    # the first records of a dataset have no CSV yet: the rebuild derives it (and its Markdown) anyway
    from protocols.report import rebuild_all

    source = Path(__file__).resolve().parent.parent / "results" / "efficiency" / "runs" / "fashion-mnist"
    target = tmp_path / "results" / "efficiency" / "runs" / "fashion-mnist"
    target.mkdir(parents=True)
    for path in sorted(source.glob("*-n10000-*.json")):
        shutil.copy(path, target / path.name)
    rebuild_all(tmp_path / "results", readme="none", progress=lambda path: None)
    assert (tmp_path / "results" / "efficiency" / "fashion-mnist.csv").is_file()
    assert "Table II" in (tmp_path / "results" / "efficiency" / "fashion-mnist.md").read_text()
