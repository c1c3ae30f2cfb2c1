"""`tidings check` catches an attribute the model does not have, used by notifier code or a template through the
stand-in row (which would otherwise accept any name): the model, the attribute and a did-you-mean."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from jobs.commands.cli import main
from notifiers import registry

MISSPELT = '''
    from notifiers import Email, Event, Notifier, Recipient, on
    from sqlalchemy import ForeignKey, String
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
    from workflow import Stateful, Workflow


    class Base(DeclarativeBase):
        pass


    class Courier(Base):
        __tablename__ = "check_couriers"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(100))


    class Parcel(Stateful, Base):
        __tablename__ = "check_parcels"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(100))
        email: Mapped[str] = mapped_column(String(320))
        courier_id: Mapped[int] = mapped_column(ForeignKey("check_couriers.id"))
        courier: Mapped[Courier] = relationship()
        workflow = Workflow(states=["new", "shipped", "delivered", "lost"], initial="new", name="CheckParcel",
                            transitions=[["ship", "new", "shipped"], ["deliver", "shipped", "delivered"],
                                         ["lose", "shipped", "lost"]],
                            parties={"sender": "email"})


    class ParcelNotifier(Notifier):
        templates = "templates"

        @on(Parcel, "ship", to="sender")
        def shipped(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject=f"{event.subject.titel} is on its way", text="Shipped.")

        @on(Parcel, "deliver", to="sender")
        def delivered(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="Delivered", template="parcels/delivered")

        @on(Parcel, "lose", to="sender")
        def lost(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject=f"{event.subject.title} is lost", text=f"{event.subject.courier.name} lost it.")
'''


@pytest.fixture
def misspelt(tmp_path: Path, restore_registry: None) -> Iterator[ModuleType]:
    """A notifier module using ``subject.titel`` in code and ``subject.courier.nmae`` in a template; alone registered."""
    folder = tmp_path / "app"
    (folder / "templates" / "parcels").mkdir(parents=True)
    (folder / "misspelt_notifiers.py").write_text(textwrap.dedent(MISSPELT))
    (folder / "templates" / "parcels" / "delivered.txt").write_text("{{ subject.courier.nmae }} delivered it.\n")
    registry._by_name.clear()  # only this module's notifiers, as in the command's own process
    registry._by_transition.clear()
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("misspelt_notifiers")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("misspelt_notifiers", None)


def test_check_names_an_attribute_the_model_does_not_have_with_a_did_you_mean(
        misspelt: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "error: ParcelNotifier.shipped (CheckParcel 'ship'): Parcel has no attribute 'titel' (subject.titel). "
        "Did you mean 'title'?",
        "error: ParcelNotifier.delivered (CheckParcel 'deliver'): Courier has no attribute 'nmae' "
        "(subject.courier.nmae). Did you mean 'name'?",
        "3 registrations checked: 2 problem(s)."]
