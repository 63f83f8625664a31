"""Every code block of the README works as written (issue 31: README prose that cannot go stale).

Each ```python block runs, in a temporary folder (it writes ``results/`` there), on the digits set
(seconds). Each ```sh block's commands are checked without running them: a ``python -m protocols.X
...`` line is parsed by that command's own parser (its ``main`` stops right after ``parse_args``,
so a flag that no longer exists, or a bad value, fails here; ``--help`` counts as parsed), a
``make X`` names a target of the Makefile, and anything else (``dask``) is a program installed
beside the project's Python.
"""
from __future__ import annotations

import argparse
import importlib
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: a fenced block: its language, its first line's number, its text
_BLOCK = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<text>.*?)^```", re.M | re.S)


def blocks(lang: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every ```lang block of the README (``line``: the block's first line)."""
    text = README.read_text()
    return [(text.count("\n", 0, m.start("text")) + 1, m["text"]) for m in _BLOCK.finditer(text) if m["lang"] == lang]


def commands(text: str) -> list[list[str]]:
    """The commands of a shell block as argument lists: continuation lines joined, comments dropped, the
    leading ``NAME=value`` assignments left out."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
            words = words[1:]
        if words:
            found.append(words)
    return found


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_-]+):", (ROOT / "Makefile").read_text(), re.M))


class Parsed(Exception):
    """Raised by the intercepted ``parse_args`` once the arguments parsed: nothing else runs."""


def parse_only(module: str, argv: list[str], monkeypatch):
    """Parse ``argv`` with the parser ``module``'s ``main`` builds, and run nothing: the namespace, or
    None for ``--help``. A parse error fails the test with argparse's message."""
    original = argparse.ArgumentParser.parse_args

    def intercept(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", intercept)
    command = importlib.import_module(module)
    try:
        command.main(argv)
    except Parsed as parsed:
        return parsed.args[0]
    except SystemExit as exit_:
        assert exit_.code == 0, f"python -m {module} {shlex.join(argv)}: refused by its parser (exit {exit_.code})"
        return None
    pytest.fail(f"python -m {module}: main returned without parsing its arguments")


PYTHON_BLOCKS = blocks("python")
SHELL_BLOCKS = blocks("sh")


def test_the_readme_has_code_blocks_to_check():
    assert PYTHON_BLOCKS and len(SHELL_BLOCKS) >= 5
    assert {lang for lang in re.findall(r"^```([a-z]+)\n", README.read_text(), re.M)} <= {"python", "sh"}, \
        "a block in a language this test does not check"


@pytest.mark.parametrize("line,text", PYTHON_BLOCKS, ids=[f"line{line}" for line, _ in PYTHON_BLOCKS])
def test_python_block_runs(line, text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    namespace = {"__name__": "__readme__"}
    exec(compile(text, f"README.md:{line}", "exec"), namespace)  # noqa: S102 (the README's own code)
    if "records" in namespace:  # the block stores what it ran where it says
        assert list((tmp_path / "results" / "map" / "runs").glob("*/*.json"))


@pytest.mark.parametrize("line,text", SHELL_BLOCKS, ids=[f"line{line}" for line, _ in SHELL_BLOCKS])
def test_shell_block_commands_parse(line, text, monkeypatch, capsys):
    targets = make_targets()
    for words in commands(text):
        program = Path(words[0]).name
        if program.startswith("python") and words[1:2] == ["-m"]:
            module = words[2]
            assert module.startswith("protocols."), f"README.md:{line}: python -m {module}"
            parse_only(module, words[3:], monkeypatch)
            monkeypatch.undo()
        elif program == "make":
            assert set(words[1:]) <= targets, f"README.md:{line}: make {words[1:]}: no such target"
        else:
            assert shutil.which(program, path=str(Path(sys.executable).parent)) or shutil.which(program), \
                f"README.md:{line}: {program} is not installed"
    capsys.readouterr()  # --help's text


def test_the_pictures_are_the_screenshots_the_command_takes():
    """Every picture the README shows exists, and the site's are those `make screenshots` retakes."""
    from protocols.site_shots import SHOTS

    pictures = set(re.findall(r"\]\((docs/[^)]+\.png)\)", README.read_text()))
    assert pictures and all((ROOT / p).is_file() for p in pictures), sorted(p for p in pictures
                                                                            if not (ROOT / p).is_file())
    assert {p for p in pictures if p.startswith("docs/site-")} == {f"docs/{name}" for name in SHOTS}


# -- no hand-typed figure ---------------------------------------------------------------------------
#: what reads like a measurement: a MAP-like decimal, a percentage, a duration or size, a speedup
MEASURED = (r"\b0\.\d{3,}\b", r"\d+(?:\.\d+)?\s?%", r"\b\d+(?:\.\d+)?\s?(?:s|ms|min|minutes|hours?|h|MB|GB|GiB)\b",
            r"\b\d+(?:\.\d+)?x(?![0-9])")
#: figures outside the results block that are settings, not measurements, each with why
SETTINGS = {
    "0.5 %": "the pilot's definition of 'within 0.5 % of its best' (protocols/settings/pilot.json's rule)",
    "24 h": "protocols.efficiency's refusal threshold for a plan's estimated time (a flag's default)",
    "99%": "Table II's headline criterion, tie-aware MAP@K within 99% of faiss flat's (efficiency_tables)",
}


def readme_prose() -> str:
    """The README without its generated results block."""
    from protocols.paper_tables import README_BEGIN, README_END

    head, rest = README.read_text().split(README_BEGIN, 1)
    return head + rest.split(README_END, 1)[1]


def measured_figures(text: str) -> list[str]:
    return [m.group() for pattern in MEASURED for m in re.finditer(pattern, text)]


def test_the_readme_prose_types_no_measured_figure():
    """Every measured figure of the README is in the block generated from the records (issue 31):
    prose that types one (a duration, a MAP, a share, a speedup) goes stale when the records change."""
    assert set(measured_figures(readme_prose())) <= set(SETTINGS), \
        sorted(set(measured_figures(readme_prose())) - set(SETTINGS))
    # the check sees what it must: the figures the README used to type by hand
    assert measured_figures("in 50-90 s per code length, about 30 minutes, 0.013 MAP, 10.6% of the codes, 13.4x") \
        == ["0.013", "10.6%", "90 s", "30 minutes", "13.4x"]


def test_the_generated_block_says_what_the_records_cost(tmp_path):
    """The block's timing part comes from the records: totals over every seed and seed 0's, the demo's
    share, where they ran, training seconds as mean ± sd (n) with the marks of what a cell mixes."""
    import pandas as pd

    from protocols.run_times import demo_settings, timing_lines

    epyc = "AMD EPYC (2 cores)"
    rows = pd.DataFrame([
        {"method": m, "bits": b, "training_seed": t, "train_s": s, "encode_s": 6.0, "search_s": 0.0,
         "machine": machine, "device": device, "commit": "abc", "thread_counts": "1", "record_id": f"{m}{b}{t}"}
        for m, b, t, s, machine, device in [
            ("hashnet", 32, 0, 120.0, epyc, "cpu"), ("hashnet", 32, 1, 180.0, epyc, "cpu"),
            ("hashnet", 64, 0, 114.0, epyc, "cpu"), ("dhn", 32, 0, 90.0, "Xeon (16 cores)", "cuda"),
            ("dhn", 32, 1, 150.0, epyc, "cpu")]])
    lines = timing_lines(rows, 0, ["hashnet", "dhn", "lsh"], [32, 64], demo=(["hashnet"], [32, 64]))
    text = "\n".join(lines)
    assert text.startswith("Its 5 records took 11.4 min of fit + encode + search in all (5.7 min for training seed "
                           "0's 3); `make demo` reruns 2 of them (hashnet at 32, 64 bits, seed 0), which took 4.1 min.")
    assert "AMD EPYC (2 cores): 4 records on cpu; Xeon (16 cores): 1 record on cuda" in text
    assert "| hashnet | 150 ± 42 (2) | 114 (1)† |" in text and "| dhn | 120 ± 42 (2)ᵐᵈ | – |" in text
    assert "lsh" not in text  # no records, no row
    # stored before today's defaults (a rule changed since): not what the demo runs now, and not said to be
    stale = rows.assign(stale=rows["method"] == "hashnet")
    text = "\n".join(timing_lines(stale, 0, ["hashnet", "dhn"], [32, 64], demo=(["hashnet"], [32, 64])))
    assert "`make demo` (hashnet at 32, 64 bits, seed 0) runs them with today's defaults, under which none is " \
           "stored yet." in text and "reruns" not in text
    # the demo's share follows the Makefile's variables, which the demo target runs with
    (tmp_path / "Makefile").write_text("DEMO_METHODS ?= hdhash,dpsh\nDEMO_BITS ?= 32\n")
    assert demo_settings(tmp_path / "Makefile") == (["hdhash", "dpsh"], [32], 1)
    (tmp_path / "Makefile").write_text("DEMO_METHODS ?= hdhash,dpsh\nDEMO_BITS ?= 32\nDEMO_WORKERS ?= 2\n")
    assert demo_settings(tmp_path / "Makefile") == (["hdhash", "dpsh"], [32], 2)
    # runs side by side: the longest worker's share (2.1 and 2.0 min on one worker each, not 4.1)
    text = "\n".join(timing_lines(rows, 0, ["hashnet"], [32, 64], demo=(["hashnet"], [32, 64], 2)))
    assert "which took 4.1 min (2.1 min on its 2 workers side by side)" in text
    demo_line = re.search(r"^demo:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.M)[1]
    assert "--methods $(DEMO_METHODS)" in demo_line and "--bits $(DEMO_BITS)" in demo_line
    assert demo_settings()[0] and demo_settings()[1]
