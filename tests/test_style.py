"""The one style table (protocols.style) behind every plot: each method its own look, deterministic
for names it does not know, HDHash's tree tied to HDHash."""
from protocols.style import FAMILIES, METHODS, column_style, index_style, method_style


def test_every_method_in_the_table_has_its_own_colour_and_marker():
    assert len(METHODS) >= 16
    assert len({colour for colour, _, _ in METHODS.values()}) == len(METHODS)
    for name in ("hdhash", "hashnet", "dhn", "dnnh", "cnnh", "sdh", "ksh", "sh", "lsh", "itq", "opq",
                 "dpsh", "greedyhash", "csq", "orthohash"):
        assert name in METHODS
    assert all(family in FAMILIES for _, _, family in METHODS.values())


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
