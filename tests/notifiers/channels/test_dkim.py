"""DKIM signing (the ``dkim`` extra): dkimpy's own verifier accepts what the SMTP and files channels write."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import jobs
import pytest
import workflow
from aiosmtpd.controller import Controller
from jobs.runtime import Runtime
from notifiers import (
    ChannelConfigurationError,
    DKIMSigner,
    Email,
    FileChannel,
    Recipient,
    SMTPChannel,
    UnsubscribeLinks,
)
from notifiers.unsubscribe_links import with_link

SELECTOR, DOMAIN = "tidings2026", "example.com"
ANN = Recipient("ann@example.com", "Ann")
LINKS = UnsubscribeLinks("https://shop.example.com/unsubscribe", b"secret")


class Keeper:
    """An SMTP handler keeping the bytes of each message as they arrived."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 OK"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key: its PEM file, and the DNS TXT record publishing its public half."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("the openssl command is needed to make the DKIM test key")
        pytest.skip("the openssl command is needed to make the DKIM test key")
    path = tmp_path_factory.mktemp("dkim") / "private.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True, timeout=60)
    public = subprocess.run(["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True, timeout=60).stdout
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Keeper]]:
    keeper = Keeper()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(keeper, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, keeper
    controller.stop()


def verified(message: bytes, record: bytes) -> bool:
    """dkimpy's verdict, with DNS answered by the test key's record (no network)."""
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None
    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def an_email() -> Email:
    url = LINKS.url(Recipient("ann@example.com", ref="Person:1"), "shop.Notices.paid", "email")
    message = with_link(Email(subject="Order 42 paid", text="Hello Ann", html="<p>Hello Ann</p>"), url)
    assert isinstance(message, Email)
    return message


def sent_over_smtp(smtp: tuple[Controller, Keeper], key: tuple[Path, bytes], message: Email) -> bytes:
    controller, keeper = smtp
    signer = DKIMSigner(SELECTOR, DOMAIN, key_path=key[0])
    with SMTPChannel("127.0.0.1", controller.port, sender="Shop <shop@example.com>", dkim=signer) as channel:
        channel.send(message, ANN, key="k-1")
    return keeper.received[-1]


def test_a_mail_sent_over_smtp_verifies_with_dkimpy(smtp: tuple[Controller, Keeper], key: tuple[Path, bytes]) -> None:
    assert verified(sent_over_smtp(smtp, key, an_email()), key[1])


def test_the_signature_covers_from_subject_date_message_id_and_both_unsubscribe_headers(
        smtp: tuple[Controller, Keeper], key: tuple[Path, bytes]) -> None:
    data = sent_over_smtp(smtp, key, an_email())
    signature = data.partition(b"\r\n\r\n")[0].split(b"DKIM-Signature:")[1]
    signed = b"".join(signature.split()).partition(b"h=")[2].partition(b";")[0].lower().split(b":")
    assert {b"from", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post",
            b"auto-submitted"} <= set(signed)


def test_a_mail_whose_unsubscribe_header_was_changed_fails_verification(smtp: tuple[Controller, Keeper],
                                                                       key: tuple[Path, bytes]) -> None:
    data = sent_over_smtp(smtp, key, an_email())
    assert not verified(data.replace(b"https://shop.example.com/", b"https://evil.example.com/"), key[1])


def test_a_mail_with_an_8bit_body_verifies(smtp: tuple[Controller, Keeper], key: tuple[Path, bytes]) -> None:
    assert verified(sent_over_smtp(smtp, key, Email(subject="Grüße", text="Schöne Grüße, Ann")), key[1])


def test_a_file_written_by_the_files_channel_verifies_with_dkimpy(tmp_path: Path, key: tuple[Path, bytes]) -> None:
    with FileChannel(tmp_path, sender="Shop <shop@example.com>",
                     dkim=DKIMSigner(SELECTOR, DOMAIN, key_path=key[0])) as channel:
        channel.send(an_email(), ANN, key="k-1")
    assert verified((tmp_path / "k-1.eml").read_bytes(), key[1])


def test_a_key_file_that_is_not_a_key_is_refused_when_the_signer_is_built(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ChannelConfigurationError, match="does not sign.*give a PEM RSA private key"):
        DKIMSigner(SELECTOR, DOMAIN, key_path=bad)


def test_a_missing_key_file_is_refused_when_the_signer_is_built(tmp_path: Path) -> None:
    with pytest.raises(ChannelConfigurationError, match="cannot be read"):
        DKIMSigner(SELECTOR, DOMAIN, key_path=tmp_path / "missing.pem")


def test_a_bad_key_in_the_settings_stops_the_runtime_at_start_not_per_mail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    settings = jobs.Settings(dkim_selector=SELECTOR, dkim_domain=DOMAIN, dkim_key_path=str(bad))
    with pytest.raises(jobs.ConfigurationError, match="does not sign"):
        Runtime(settings)


def test_the_tidings_command_with_a_bad_key_exits_2_naming_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    env = {**os.environ, "TIDINGS_DKIM_SELECTOR": SELECTOR, "TIDINGS_DKIM_DOMAIN": DOMAIN,
           "TIDINGS_DKIM_KEY_PATH": str(bad), "TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    done = subprocess.run([sys.executable, "-m", "jobs", "deliveries"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "TIDINGS_DKIM_KEY_PATH" in done.stderr and "does not sign" in done.stderr


def test_dkim_settings_come_together() -> None:
    with pytest.raises(jobs.ConfigurationError, match="dkim_key_path.*needs dkim_selector, dkim_domain and"):
        jobs.Settings(dkim_selector=SELECTOR, dkim_domain=DOMAIN)


def test_a_signature_made_now_still_verifies_after_the_clock_moves(key: tuple[Path, bytes]) -> None:
    data = DKIMSigner(SELECTOR, DOMAIN, key_path=key[0]).sign(
        an_email().to_bytes(ANN, sender="shop@example.com", key="k-1"))
    workflow.clock.advance(dt.timedelta(days=1))
    try:
        assert verified(data, key[1])
    finally:
        workflow.clock.reset()
