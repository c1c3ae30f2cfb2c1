"""The worker's cost per mail with DKIM signing on and off: render, write the bytes, sign.

Run: ``python -m bench.dkim`` (part of ``make bench``). Each sample renders ``MAILS`` mails from
a text and an HTML template, with their unsubscribe link (``List-Unsubscribe`` and
``List-Unsubscribe-Post``, ``Auto-Submitted``) and writes each as SMTP carries it
(``Email.to_bytes``); with DKIM on, each is also signed with a 2048-bit RSA key (dkimpy,
relaxed/relaxed), as the SMTP and files channels do. Samples of both kinds take turns. The
request path does not change: signing happens in the worker, where the mail bytes are made.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from notifiers import DKIMSigner, Email, Recipient, UnsubscribeLinks
from notifiers.templates import templates_in
from notifiers.unsubscribe_links import with_link

from .common import Figure, header, interleaved, report

MAILS = 100
SAMPLES = 15
TEXT = "Hello {{ recipient.name }},\n\nYour order {{ order }} has shipped.\n{% if unsubscribe_url %}" \
       "Unsubscribe: {{ unsubscribe_url }}\n{% endif %}"
HTML = "<p>Hello {{ recipient.name }},</p><p>Your order {{ order }} has shipped.</p>{% if unsubscribe_url %}" \
       "<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>{% endif %}"


def mails(folder: Path, signer: DKIMSigner | None) -> Callable[[], None]:
    """Render, write (and with ``signer``, sign) ``MAILS`` mails."""
    templates = templates_in(folder)
    links = UnsubscribeLinks("https://shop.example.com/unsubscribe", b"bench-secret")

    def op() -> None:
        for n in range(MAILS):
            recipient = Recipient(f"buyer{n}@example.com", f"Buyer {n}", ref=f"User:{n}")
            url = links.url(recipient, "shop.notices.OrderNotifier.shipped", "email")
            email = Email(subject=f"Order {n} shipped", template="shipped", context={"order": n})
            rendered = with_link(email.rendered(templates, {"recipient": recipient, "unsubscribe_url": url}), url)
            assert isinstance(rendered, Email)
            data = rendered.to_bytes(recipient, sender="Shop <shop@example.com>", key=f"k{n:08d}")
            if signer is not None:
                signer.sign(data)
    return op


def main() -> list[Figure]:
    header("DKIM: the worker's cost per mail", f"{SAMPLES} samples of {MAILS} mails each, signed and unsigned "
                                                f"taking turns: render two templates with the unsubscribe link, "
                                                f"write the bytes; DKIM adds an RSA-2048 signature (dkimpy).")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "shipped.txt").write_text(TEXT)
        (folder / "shipped.html").write_text(HTML)
        key = folder / "dkim.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True, timeout=60)
        ops = {"off": mails(folder, None), "on": mails(folder, DKIMSigner("bench", "example.com", key_path=key))}
        interleaved(2, ops)  # warm up: templates compiled, dkimpy imported
        times = interleaved(SAMPLES, ops)
    per_mail = {kind: [t / MAILS for t in samples] for kind, samples in times.items()}
    return report([Figure("per mail: render + bytes (+ DKIM)", unit="ms", tidings=per_mail["on"],
                          baseline=per_mail["off"], baseline_name="DKIM off", scale=1000.0, digits=3)],
                  "Tidings column: DKIM on. The request path is unchanged by DKIM, unsubscribe links and "
                  "Auto-Submitted: all of it happens in the worker (bench.request measures the request).")


if __name__ == "__main__":
    main()
