"""The test kit, as its users meet it: a plugin installed with Tidings, run in a fresh pytest."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from jobs.testing import Kit
from notifiers import TemplateError, opt_out
from sqlalchemy.orm import Session

from tests.app import Account, Order, Person

pytest_plugins = ["pytester"]

SAMPLE = Path(__file__).parent / "kit"


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A folder holding the sample application and its user's test file, and nothing of ours."""
    shutil.copy(SAMPLE / "sample_app.py", pytester.path / "sample_app.py")
    shutil.copy(SAMPLE / "sample_test.py", pytester.path / "test_sample.py")
    return pytester


def test_a_users_test_file_passes_with_only_the_installed_fixtures(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=5)


def test_a_failing_assertion_lists_what_was_sent_instead(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_failing="""
        from test_sample import engine, session, signup

        def test_the_wrong_address(session, signup, tidings):
            signup.activate()
            session.commit()
            tidings.assert_notified("bob@example.com", trigger="activate")
    """)
    result = user_project.runpytest_subprocess("-p", "no:randomly", "test_failing.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*Expected at least one notification(s) matching to='bob@example.com', trigger='activate'; found 0.*",
        "*Sent:*",
        "*SampleSignup 1 'activate' -> member <ann@example.com> by email: 'Welcome, Ann'*",
    ])


def test_an_actor_exception_surfaces_in_the_test_with_its_traceback(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_exploding="""
        from test_sample import engine, session, signup

        def test_a_notifier_that_raises(session, signup, tidings):
            signup.close(reason="bug")
            session.commit()
            tidings.run()
    """)
    result = user_project.runpytest_subprocess("-p", "no:randomly", "--durations=0", "test_exploding.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['*raise RuntimeError("the goodbye template service is down")*',
                                 "*sample_app.py:*: RuntimeError*"])
    durations = [float(d) for d in re.findall(r"([\d.]+)s call", result.stdout.str())]
    print(f"[figures] the actor's exception reached the test after {max(durations):.2f} s")


def test_a_failing_assertion_points_at_the_users_line(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_failing="""
        from test_sample import engine, session, signup

        def test_the_wrong_address(session, signup, tidings):
            signup.activate()
            session.commit()
            tidings.assert_sent_count(2)
    """)
    result = user_project.runpytest_subprocess("-p", "no:randomly", "test_failing.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tidings.assert_sent_count(2)", "E *AssertionError: Expected 2 notification(s)*",
                                 "test_failing.py:6: AssertionError"])
    result.stdout.no_fnmatch_line("*jobs/testing.py*")


# A user's notifier whose templates are broken in each of the ways a template can be.
TEMPLATED_APP = """
    from notifiers import Email, Event, Notifier, Recipient, on
    from sqlalchemy import String
    from sqlalchemy.orm import Mapped, mapped_column
    from workflow import Stateful, Workflow

    from sample_app import Base


    class Invite(Stateful, Base):
        __tablename__ = "invites"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(320))
        workflow = Workflow(states=["new", "sent"], initial="new", transitions=[["send", "new", "sent"]],
                            parties={"guest": "email"})


    class InviteNotifier(Notifier):
        templates = "templates"

        @on(Invite, "send", to="guest")
        def invited(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="You are invited", template=event.context["template"])
"""

TEMPLATED_TEST = """
    from test_sample import engine, session
    from templated_app import Invite

    def test_an_invitation_is_sent(session, tidings):
        invite = Invite(email="ann@example.com")
        session.add(invite)
        session.commit()
        invite.send(template="{template}")
        session.commit()
        tidings.run()
        assert invite.state == "sent"
"""


@pytest.mark.parametrize(("template", "error"), [
    ("missing", "E *TemplateError: Template 'missing' not found: neither missing.txt nor missing.html is in *"),
    ("broken", "E *TemplateError: Template 'broken.txt' does not compile, line 3: unexpected '}'*"),
    ("undefined", "E *TemplateError: Template 'undefined.txt' failed to render, line 3: 'staus' is undefined.*"),
])
def test_a_template_error_fails_the_users_test_with_the_template_and_line(user_project: pytest.Pytester,
                                                                          template: str, error: str) -> None:
    templates = user_project.mkdir("templates")
    (templates / "broken.txt").write_text("Hello {{ recipient.name }},\n\nyou are invited by {{ event.actor }.\n")
    (templates / "undefined.txt").write_text("Hello {{ recipient.name }},\n\nyour invitation is {{ staus }}.\n")
    user_project.makepyfile(templated_app=TEMPLATED_APP, test_invite=TEMPLATED_TEST.format(template=template))
    result = user_project.runpytest_subprocess("-p", "no:randomly", "test_invite.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([">*tidings.run()", error])


def test_a_template_error_fails_a_test_that_left_its_notifications_queued(user_project: pytest.Pytester) -> None:
    templates = user_project.mkdir("templates")
    (templates / "broken.txt").write_text("Hello {{ recipient.name }},\n\nyou are invited by {{ event.actor }.\n")
    quiet = TEMPLATED_TEST.format(template="broken").replace("        tidings.run()\n", "")
    user_project.makepyfile(templated_app=TEMPLATED_APP, test_invite=quiet)
    result = user_project.runpytest_subprocess("-p", "no:randomly", "test_invite.py")
    result.assert_outcomes(passed=1, errors=1)  # the test's own assertions held; its teardown ran the mail
    result.stdout.fnmatch_lines(["E *TemplateError: Template 'broken.txt' does not compile, line 3: unexpected '}'*"])


def test_random_order_twice_gives_the_same_results(user_project: pytest.Pytester) -> None:
    outcomes = []
    for seed in ("1", "2"):
        result = user_project.runpytest_subprocess("-p", "randomly", f"--randomly-seed={seed}", "-v")
        result.stdout.fnmatch_lines([f"*randomly-seed={seed}*"])
        outcomes.append(result.parseoutcomes())
    assert outcomes[0] == outcomes[1] == {"passed": 5}


# --- Skipped deliveries: opt-outs and notifiers that return None, with their reasons -----------------


def opted_out_account(session: Session, **opt_out_of: str) -> Account:
    """Ann's account, locked, Ann having opted out as told (of everything when told nothing)."""
    account = Account(owner=Person(name="Ann", email="ann@example.com"), state="locked")
    session.add(account)
    session.flush()
    opt_out(session, account.owner, **opt_out_of)
    session.commit()
    return account


def test_skipped_lists_each_opted_out_delivery_with_its_reason(session: Session, tidings: Kit) -> None:
    account = opted_out_account(session, channel="email")
    account.unlock()
    session.commit()
    [skip] = tidings.skipped("ann@example.com")
    assert (skip.channel, skip.trigger, skip.party, skip.reason) == ("email", "unlock", "owner", "Opted out of email.")
    assert [n.channel for n in tidings.notifications("ann@example.com")] == ["inapp"]


def test_a_notifier_returning_none_is_skipped_with_its_reason(session: Session, order: Order, tidings: Kit) -> None:
    order.cancel(quiet=True)
    session.commit()
    skips = tidings.assert_skipped("bea@example.com", reason="returned None", count=1)
    assert skips[0].notifier.endswith("OrderNotifier.cancelled")
    assert tidings.notifications("bea@example.com") == []


def test_required_mail_is_not_skipped_by_an_opt_out(session: Session, tidings: Kit) -> None:
    account = opted_out_account(session)
    account.unlock()
    account.lock()
    session.commit()
    assert {(s.trigger, s.channel) for s in tidings.skipped()} == {("unlock", "email"), ("unlock", "inapp")}
    tidings.assert_notified("ann@example.com", trigger="lock", count=2)


def test_assert_skipped_lists_what_was_skipped_when_nothing_matches(session: Session, tidings: Kit) -> None:
    account = opted_out_account(session, channel="inapp")
    account.unlock()
    session.commit()
    with pytest.raises(AssertionError) as failure:
        tidings.assert_skipped("ann@example.com", channel="email")
    assert str(failure.value) == (
        "Expected at least one skip(s) matching to='ann@example.com', channel='email'; found 0.\n"
        f"Skipped:\n  Account {account.id} 'unlock' -> owner <ann@example.com> by inapp: Opted out of inapp.")


def test_clear_forgets_skipped_deliveries_too(session: Session, tidings: Kit) -> None:
    account = opted_out_account(session)
    account.unlock()
    session.commit()
    tidings.clear()
    assert tidings.skipped() == []
    account.lock()
    account.unlock()
    session.commit()
    assert len(tidings.skipped(trigger="unlock")) == 2


def test_nothing_is_skipped_before_anything_is_committed(tidings: Kit) -> None:
    assert tidings.skipped() == []


# --- Failed deliveries: recorded for bad recipient data, raised for a message that cannot be built ----------


def test_a_template_error_raises_in_the_test_naming_the_template_and_line(session: Session, order: Order,
                                                                         tidings: Kit) -> None:
    order.pay()
    order.ship(template="undefined")
    session.commit()
    with pytest.raises(TemplateError, match="'undefined.txt' failed to render, line 1") as caught:
        tidings.run()
    assert (caught.value.template, caught.value.lineno) == ("undefined.txt", 1)


def test_a_template_error_is_recorded_failed_as_in_production(session: Session, order: Order, tidings: Kit) -> None:
    order.pay()
    order.ship(template="broken")
    session.commit()
    with pytest.raises(TemplateError):
        tidings.run()
    [failed] = tidings.failed()
    assert (failed.to, failed.trigger) == ("bea@example.com", "ship")
    assert failed.reason.startswith("TemplateError: Template 'broken.txt' does not compile, line 1")


def test_failed_lists_a_malformed_address_with_its_reason(session: Session, order: Order, tidings: Kit) -> None:
    order.watchers = ["nobody.example.com"]
    order.cancel()
    session.commit()
    [failed] = tidings.failed(party="watchers")
    assert failed.reason.startswith("Party 'watchers': Address 'nobody.example.com' ")
    assert tidings.failed(party="buyer") == [] and tidings.failed(reason="no such reason") == []
    tidings.assert_notified("bea@example.com", trigger="cancel", count=1)


def test_assert_no_failures_lists_each_failure_with_its_reason(session: Session, order: Order, tidings: Kit) -> None:
    order.watchers = ["nobody.example.com"]
    order.cancel()
    session.commit()
    with pytest.raises(AssertionError) as failure:
        tidings.assert_no_failures()
    assert str(failure.value).startswith(
        "Expected no failed delivery; 1 failed.\nFailed:\n"
        f"  Order {order.id} 'cancel' -> watchers <> by email: Party 'watchers': Address 'nobody.example.com' ")


def test_assert_no_failures_passes_when_every_delivery_was_sent(session: Session, order: Order, tidings: Kit) -> None:
    order.pay()
    session.commit()
    tidings.assert_no_failures()
    tidings.assert_sent_count(2)


def test_clear_forgets_failed_deliveries_too(session: Session, order: Order, tidings: Kit) -> None:
    order.watchers = ["nobody.example.com"]
    order.cancel()
    session.commit()
    tidings.clear()
    assert tidings.failed() == []


def test_advance_moves_the_clock_and_runs_what_was_queued_first(session: Session, order: Order,
                                                                  tidings: Kit) -> None:
    from workflow import utcnow

    order.pay()
    session.commit()
    before = utcnow()
    sent = tidings.advance(days=3)
    assert [n.trigger for n in sent] == ["pay"] * len(sent) and sent
    assert utcnow() - before >= dt.timedelta(days=3)


def test_the_clock_is_real_again_after_a_test_that_advanced_it(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(test_clock="""
        import datetime as dt
        from workflow import utcnow

        def test_a_moves_time(tidings):
            tidings.advance(days=30)
            assert utcnow() - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=29)

        def test_b_sees_real_time():
            assert abs(utcnow() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
    """)
    result = user_project.runpytest_subprocess("-p", "no:randomly", "test_clock.py")
    result.assert_outcomes(passed=2)
