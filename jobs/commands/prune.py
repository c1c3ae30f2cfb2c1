"""``tidings prune [--dry-run]``: delete now what the retention settings no longer keep."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ..retention import prune
from ..runtime import current

__all__ = ["add_parser", "run"]

_HELP = "delete final deliveries, read inbox items, done digests (and done transitions) past their retention"
_ABOUT = ("Deletes in batches of TIDINGS_PRUNE_BATCH rows, one transaction each, skipping rows a worker holds: safe "
          "beside running workers. TIDINGS_KEEP_DELIVERIES_DAYS, TIDINGS_KEEP_READ_INBOX_DAYS, "
          "TIDINGS_KEEP_TRANSITIONS_DAYS say how long each is kept (0: for ever); done digests whose deliveries are "
          "gone, and throttle windows, go by the deliveries' limit (the transitions' when that is 0).")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``prune`` to the commands."""
    pruning = commands.add_parser("prune", help=_HELP, description=_ABOUT)
    pruning.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    pruning.add_argument("--json", action="store_true", help="the counts as JSON")


def run(args: argparse.Namespace) -> int:
    """Prune (or count, with ``--dry-run``) and print how many rows of each kind."""
    runtime = current()
    pruned = prune(runtime.engine, runtime.settings, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, **dataclasses.asdict(pruned)}))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {pruned.deliveries} deliveries, {pruned.transitions} transitions, {pruned.inbox} read inbox items, "
          f"{pruned.digests} digests, {pruned.throttles} throttle windows")
    return 0
