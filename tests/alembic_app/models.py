"""The test application's one model: a stateful shipment, in the application's own metadata."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    pass


class Shipment(Stateful, Base):
    __tablename__ = "app_parcels"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))

    workflow = Workflow(states=["packed", "shipped"], initial="packed",
                        transitions=[["ship", "packed", "shipped"]], parties={"recipient": "recipient"})
