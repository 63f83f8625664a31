"""The one style table (protocols.style) behind every plot: each method its own look, deterministic
for names it does not know, HDHash's tree tied to HDHash, the family read from the method's class."""
from methods import list_methods
from protocols.style import FAMILIES, METHODS, column_style, column_styles, family, index_style, method_style


def test_every_method_in_the_table_is_registered_and_has_its_own_colour():
    assert set(METHODS) <= set(list_methods()), sorted(set(METHODS) - set(list_methods()))
    assert len({colour for colour, _ in METHODS.values()}) == len(METHODS)
    for name in ("hdhash", "hashnet", "dhn", "dnnh", "cnnh", "sdh", "ksh", "sh", "lsh", "itq", "opq",
                 "dpsh", "greedyhash", "csq", "orthohash"):
        assert name in METHODS


def test_the_family_comes_from_the_method_class():
    assert all(family(name) in FAMILIES for name in list_methods())
    assert [family(m) for m in ("hashnet", "sdh", "itq", "opq", "dpsh", "not-a-method")] == \
        ["deep", "supervised", "unsupervised", "quantisation", "beyond", "other"]


def test_line_style_by_family_and_a_deterministic_fallback():
    assert method_style("itq").dash == method_style("lsh").dash != method_style("hashnet").dash
    assert method_style("sdh").dash != method_style("itq").dash != method_style("opq").dash
    unknown = method_style("not-a-method")
    assert unknown == method_style("not-a-method") and unknown.family == "other"


def test_hdhash_tree_rows_keep_hdhash_colour_with_another_marker_and_line():
    tree, flat = column_style("hdhash (tree:0.3)"), column_style("hdhash")
    assert tree.colour == flat.colour == index_style("hdhash-tree").colour
    assert tree.symbol != flat.symbol and tree.dash != flat.dash
    assert column_style("itq [nbits=8]") == method_style("itq")


def test_no_two_lines_of_a_plot_look_alike():
    """Colour by method, marker and dash by variant (issue 31: three DPSH lines, four HDHash lines alike)."""
    labels = ["hdhash", "hdhash (tree:0.3)", "hdhash [level_loss='orthohash']",
              "hdhash (tree:0.3) [level_loss='orthohash']",
              "hdhash [epochs=150,level_loss='dpsh']", "hdhash (tree:0.3) [epochs=150,level_loss='dpsh']",
              "dpsh", "dpsh [patience=5]", "dpsh [epochs=90,patience=5]", "hashnet"] + \
        [f"itq [n_iter={i}]" for i in range(12)] + ["itq"]
    styles = column_styles(labels)
    looks = {(s.colour, s.dash, s.symbol) for s in styles.values()}
    assert len(looks) == len(labels)
    assert {styles[label].colour for label in labels if label.startswith("hdhash")} == {METHODS["hdhash"][0]}
    assert all(styles[label] == column_style(label) for label in labels if "[" not in label)
    assert column_styles(list(reversed(labels))) == styles, "a look depends on the order drawn"
    assert styles["dpsh [patience=5]"].mpl()["linestyle"] != styles["dpsh"].mpl()["linestyle"]


def test_the_paper_plot_draws_the_dotted_lines_it_promises(tmp_path, monkeypatch):
    """Ours solid with error bars where two seeds or more; the paper's dotted only where it has figures, and the
    title says which (issue 31: the title promised dotted lines that were not drawn)."""
    import pandas as pd

    from protocols import plots

    figures = []
    monkeypatch.setattr(plots, "atomic_savefig", lambda fig, path: figures.append(fig) or path)
    rows = [{"method": m, "bits": b, "map": 0.5 + b / 1000, "map_sd": 0.01, "n_seeds": n, "paper_map": paper}
            for m, n in (("hdhash", 5), ("lsh", 1)) for b in (16, 32) for paper in [0.6 if m == "hdhash" else None]]
    for with_paper in (True, False):
        table = pd.DataFrame(rows) if with_paper else pd.DataFrame(rows).assign(paper_map=None)
        plots.plot_against_paper(table, tmp_path / "x.png", "MAP", "some-dataset")
        ax = figures[-1].axes[0]
        dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert len(dotted) == int(with_paper) and ("(dotted)" in ax.get_title()) == with_paper, ax.get_title()
        assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_position().x1 * figures[-1].bbox.width * 0.99
        caps = [c for c in ax.containers if getattr(c, "has_yerr", False) and c.has_yerr]
        assert len(caps) == 1  # HDHash over five seeds; LSH's one seed has no bar
