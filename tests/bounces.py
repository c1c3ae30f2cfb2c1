"""Delivery status notifications (RFC 3464) as relays send them, for the tests."""

from __future__ import annotations


def dsn(*groups: str) -> bytes:
    """A bounce as relays send it: a text part, the delivery-status part, and the returned headers."""
    fields = "Reporting-MTA: dns; relay.example.net\nArrival-Date: Sun, 1 Mar 2026 09:30:00 +0000\n\n" + "\n".join(groups)
    return (
        "From: Mail Delivery System <MAILER-DAEMON@relay.example.net>\n"
        "To: bounces@shop.example.com\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\n\n'
        "--b1\nContent-Type: text/plain\n\nThe mail could not be delivered.\n"
        f"--b1\nContent-Type: message/delivery-status\n\n{fields}\n"
        "--b1\nContent-Type: text/rfc822-headers\n\nMessage-ID: <k1@shop.example.com>\n--b1--\n"
    ).encode()


def group(recipient: str, action: str, status: str, diagnostic: str = "") -> str:
    """One recipient's fields of a report."""
    lines = [f"Final-Recipient: rfc822; {recipient}", f"Action: {action}", f"Status: {status}"]
    return "\n".join(lines + ([f"Diagnostic-Code: smtp; {diagnostic}"] if diagnostic else [])) + "\n"


HARD = group("Ann@Example.com", "failed", "5.1.1", "550 5.1.1 <ann@example.com>: user unknown")
SOFT = group("bob@example.com", "delayed", "4.4.1", "451 4.4.1 connection timed out")
