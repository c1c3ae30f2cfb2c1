"""``tidings demo``: the lending example on SQLite with an in-process worker (from a Tidings checkout)."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the commands."""
    demo = commands.add_parser("demo", help="the lending example on SQLite and an in-process worker (make demo)")
    demo.add_argument("--keep", metavar="DIR", help="keep the database and .eml files in DIR (default: a temp dir)")
    demo.add_argument("--path", default=argparse.SUPPRESS, help="folder holding examples/ (default: .)")


def run(args: argparse.Namespace) -> int:
    try:
        demo = importlib.import_module("examples.lending.demo")
    except ImportError as error:
        print(f"error: tidings demo runs examples/lending from a Tidings checkout; run it from the repository root "
              f"or pass --path to it ({error}).", file=sys.stderr)
        return 2
    if args.keep:
        folder = Path(args.keep)
        folder.mkdir(parents=True, exist_ok=True)
        return int(demo.main(folder))
    with tempfile.TemporaryDirectory(prefix="tidings-demo-") as tmp:
        return int(demo.main(Path(tmp)))
