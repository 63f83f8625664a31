"""Every command's ``--help``: a description in whole sentences and a line of help for every flag."""
from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

COMMANDS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "protocols").glob("*.py")
                  if re.search(r"^def main\(", p.read_text(), re.M) and "ArgumentParser(" in p.read_text())


class _Built(Exception):
    """Raised by the intercepted ``parse_args`` with the parser a command's ``main`` built."""


def parser_of(module: str, monkeypatch) -> argparse.ArgumentParser:
    def intercept(self, args=None, namespace=None):
        raise _Built(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", intercept)
    with pytest.raises(_Built) as built:
        importlib.import_module(f"protocols.{module}").main([])
    return built.value.args[0]


def test_the_commands_are_found():
    assert {"map", "efficiency", "pilot", "report", "site", "paper"} <= set(COMMANDS)


@pytest.mark.parametrize("module", COMMANDS)
def test_help_describes_the_command_and_every_flag(module, monkeypatch):
    parser = parser_of(module, monkeypatch)
    description = " ".join((parser.description or "").split())
    assert re.search(r"[.?)]$", description), f"python -m protocols.{module}: description {description!r} is cut short"
    silent = [a.option_strings or a.dest for a in parser._actions
              if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not silent, f"python -m protocols.{module}: no help for {silent}"
