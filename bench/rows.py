"""Loading stateful rows costs what loading plain rows costs: no machine is built per row.

Run: ``python -m bench.rows`` (part of ``make bench``).
"""

from __future__ import annotations

import gc
import tempfile
import time
import tracemalloc
from pathlib import Path

import transitions
from sqlalchemy import String, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from workflow import Stateful, Workflow

from .common import Figure, header, interleaved, report

ROWS = 10_000
RUNS = 75  # interleaved; a few hundred ms each, so a busy moment of the machine weighs on few of them
STATES = ["requested", "accepted", "declined", "handed_over", "returned"]
TRANSITIONS = [["accept", "requested", "accepted"], ["decline", "requested", "declined"],
               ["hand_over", "accepted", "handed_over"], ["give_back", "handed_over", "returned"],
               ["reopen", "declined", "requested"], ["cancel", ["requested", "accepted"], "declined"]]


class Base(DeclarativeBase):
    pass


class PlainLoan(Base):
    __tablename__ = "bench_plain_loans"
    id: Mapped[int] = mapped_column(primary_key=True)
    borrower: Mapped[str] = mapped_column(String(100))
    lender: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(64), index=True)


class StatefulLoan(Stateful, Base):
    __tablename__ = "bench_stateful_loans"
    id: Mapped[int] = mapped_column(primary_key=True)
    borrower: Mapped[str] = mapped_column(String(100))
    lender: Mapped[str] = mapped_column(String(100))
    workflow = Workflow(states=STATES, initial="requested", transitions=TRANSITIONS,
                        parties={"borrower": "borrower", "lender": "lender"}, name="BenchLoan")


def load(engine: object, model: type) -> list[object]:
    with Session(engine) as session:  # type: ignore[call-overload]
        return list(session.scalars(select(model)).all())


def retained(engine: object, model: type) -> int:
    """Bytes still allocated while the loaded rows are alive."""
    gc.collect()
    tracemalloc.start()
    rows = load(engine, model)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del rows
    return size


class _Row:
    state = "requested"


def machine_per_row(count: int) -> tuple[float, int]:
    """Seconds (timed without tracemalloc) and bytes per row of the approach avoided: a Machine per row."""
    def build() -> list[object]:
        objects = [_Row() for _ in range(count)]
        for o in objects:
            transitions.Machine(model=o, states=STATES, transitions=TRANSITIONS, initial="requested",
                                auto_transitions=False)
        return objects

    start = time.perf_counter()
    build()
    seconds = time.perf_counter() - start
    gc.collect()
    tracemalloc.start()
    kept = build()
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return seconds / count, size // count


def main() -> list[Figure]:
    header(f"Figure 6: loading {ROWS:,} rows", f"A plain model against the same model with Stateful (SQLite file; "
                                               f"time: {RUNS} loads each, interleaved; memory retained: 3 loads each, "
                                               f"under tracemalloc).")
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'rows.db'}")
        Base.metadata.create_all(engine)
        rows = [{"id": i, "borrower": f"b{i}", "lender": f"l{i}", "state": STATES[i % 5]} for i in range(ROWS)]
        with engine.begin() as connection:
            connection.execute(insert(PlainLoan), rows)
            connection.execute(insert(StatefulLoan), rows)
        ops = {"plain": lambda: load(engine, PlainLoan), "stateful": lambda: load(engine, StatefulLoan)}
        interleaved(2, ops, gc.collect)  # warm up
        times = interleaved(RUNS, ops, gc.collect)  # each load starts with the garbage of the last collected
        memory = {name: [retained(engine, model) / 2**20 for _ in range(3)]
                  for name, model in (("plain", PlainLoan), ("stateful", StatefulLoan))}
        per_row_s, per_row_b = machine_per_row(1_000)
        engine.dispose()
    return report([
        Figure("load 10,000 rows: time", unit="ms", tidings=times["stateful"], baseline=times["plain"],
               baseline_name="plain model", limit=1.05, scale=1000.0, digits=1),
        Figure("load 10,000 rows: memory retained", unit="MiB", tidings=memory["stateful"], baseline=memory["plain"],
               baseline_name="plain model", limit=1.05, digits=2),
    ], f"For contrast, a transitions.Machine per row would add {per_row_s * 1e6:.0f} µs and {per_row_b / 1024:.1f} KiB "
       f"per row: {per_row_s * ROWS:.1f} s and {per_row_b * ROWS / 2**20:.0f} MiB for these {ROWS:,} rows.")


if __name__ == "__main__":
    main()
