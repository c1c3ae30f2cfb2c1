"""Loading stateful rows costs what loading plain rows costs: no machine is built per row.

Run: ``python -m bench.rows`` (part of ``make bench``).
"""

from __future__ import annotations

import gc
import tempfile
import tracemalloc
from pathlib import Path

import transitions
from sqlalchemy import String, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from workflow import Stateful, Workflow

from .common import best_of, header, table

ROWS = 10_000
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


def machine_per_row(count: int) -> tuple[float, int]:
    """Seconds and bytes per row of the approach avoided: one transitions.Machine per loaded row."""
    objects = [type("Row", (), {"state": "requested"})() for _ in range(count)]
    gc.collect()
    tracemalloc.start()
    seconds = best_of(1, lambda: [transitions.Machine(model=o, states=STATES, transitions=TRANSITIONS,
                                                      initial=o.state, auto_transitions=False) for o in objects])
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds / count, size // count


def main() -> None:
    header(f"Loading {ROWS:,} rows", "A plain model against the same model with Stateful (SQLite file, best of 7).")
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'rows.db'}")
        Base.metadata.create_all(engine)
        rows = [{"id": i, "borrower": f"b{i}", "lender": f"l{i}", "state": STATES[i % 5]} for i in range(ROWS)]
        with engine.begin() as connection:
            connection.execute(insert(PlainLoan), rows)
            connection.execute(insert(StatefulLoan), rows)
        for model in (PlainLoan, StatefulLoan):
            load(engine, model)  # warm up
        plain_s, stateful_s = (best_of(7, lambda m=m: load(engine, m)) for m in (PlainLoan, StatefulLoan))
        plain_b, stateful_b = (min(retained(engine, m) for _ in range(3)) for m in (PlainLoan, StatefulLoan))
        per_row_s, per_row_b = machine_per_row(1_000)
        rows_out = [
            ("time to load", f"{plain_s * 1000:.1f} ms", f"{stateful_s * 1000:.1f} ms",
             f"{stateful_s / plain_s:.3f}", "<= 1.05", "yes" if stateful_s / plain_s <= 1.05 else "NO"),
            ("memory retained", f"{plain_b / 2**20:.2f} MiB", f"{stateful_b / 2**20:.2f} MiB",
             f"{stateful_b / plain_b:.3f}", "<= 1.05", "yes" if stateful_b / plain_b <= 1.05 else "NO"),
        ]
        table(rows_out, ["measure", "plain", "Stateful", "ratio", "target", "met"])
        print(f"\nFor contrast, a transitions.Machine per row would add {per_row_s * 1e6:.0f} µs and "
              f"{per_row_b / 1024:.1f} KiB per row: {per_row_s * ROWS:.1f} s and "
              f"{per_row_b * ROWS / 2**20:.0f} MiB for these {ROWS:,} rows.")
        engine.dispose()


if __name__ == "__main__":
    main()
