"""The default digest message (docs/digests.md, "Declaring"): a plain list of the events' own messages."""

from __future__ import annotations

from notifiers import Email, Text
from notifiers.digest_messages import plain_list


def test_the_default_digest_of_emails_counts_the_updates_and_lists_a_line_each() -> None:
    digest = plain_list([], [Email(subject="#12: crash", text="It crashes.\nOn start."), Email(subject="#12: fixed")])
    assert isinstance(digest, Email)
    assert (digest.subject, digest.text) == ("2 updates: #12: crash", "- #12: crash: It crashes.\n- #12: fixed\n")


def test_the_default_digest_of_one_event_is_that_event_s_message() -> None:
    alone = Email(subject="#12 is yours", text="Assigned to you.")
    assert plain_list([], [alone]) is alone


def test_the_default_digest_of_texts_is_a_text_of_a_line_each() -> None:
    digest = plain_list([], [Text(body="#12: you were mentioned"), Text(body="#13: ping\nmore")])
    assert isinstance(digest, Text)
    assert digest.body == "- #12: you were mentioned\n- #13: ping"
