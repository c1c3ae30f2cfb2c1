"""``python -m bench`` (``make bench``): every figure of docs/PERFORMANCE.md, then a summary of them all.

The 1,000,000-row tables are filled once and used by both the scale and the throughput
benchmarks. Each script also runs alone: ``python -m bench.request`` and so on. With
``BENCH_QUICK=1`` (``make bench-quick``): the request, fan-out, round-two and one-commit-each
throughput figures only, with fewer rounds, in under 3 minutes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from . import digests, dkim, due, fanout, prune, recovery, request, rows, rss, scale, throughput, timers, versus
from .common import QUICK, REPORTED, Figure, machine, reachable, table


def commit() -> str:
    """The commit this run measures, and whether the tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(__file__).parents[1], capture_output=True,
                              text=True).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no")
    return (git("rev-parse", "HEAD") or "unknown") + (" with uncommitted changes" if changed else "")


def full() -> None:
    """Every figure."""
    rows.main()
    request.main()
    fanout.main()
    versus.main()
    if reachable(5432) and reachable(6379):
        with scale.filled() as full_url:
            scale.main(full_url)
            throughput.main(full_url)
            prune.main(full_url)  # last on these tables: it deletes most of their deliveries
    recovery.main()
    due.main()
    rss.main()
    dkim.main()
    timers.main()
    digests.main()


def quick() -> None:
    """The figures a change to the hot path moves: request, fan-out, round two, the one-commit-each backlog."""
    request.main()
    fanout.main()
    versus.main()
    throughput.main()


def main() -> None:
    start = time.perf_counter()
    print(f"# Tidings benchmarks{' (quick)' if QUICK else ''}\n\nCommit: {commit()}.\nStarted: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
          f"\nMachine: {machine()}.\nEach ratio is Tidings' median over a baseline's median "
          f"measured in the same run; p90 is the slow tail (for rates: what 90 % of windows reached).", flush=True)
    if QUICK:
        quick()
    else:
        full()
    minutes = (time.perf_counter() - start) / 60
    REPORTED.append(Figure(f"wall time of {'make bench-quick' if QUICK else 'make bench'}", unit="min",
                           tidings=[minutes], limit=3.0 if QUICK else 10.0, digits=1))
    print(f"\n## Summary ({minutes:.1f} minutes)\n")
    table([(f.name, f"{f.measured:.2f}" + ("" if f.baseline else f" {f.unit}"), f.target,
            {None: "(reported)", True: "yes", False: "**NO**"}[f.met]) for f in REPORTED],
          ["figure", "ratio or value", "target", "met"])
    unmet = [f.name for f in REPORTED if f.met is False]
    print("Every target is met." if not unmet else f"Not met: {'; '.join(unmet)}.")


if __name__ == "__main__":
    main()
