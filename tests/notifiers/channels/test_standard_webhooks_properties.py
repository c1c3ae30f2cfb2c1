"""Standard Webhooks signing on arbitrary bodies and secrets, and ``verify_standard`` on hostile headers."""

from __future__ import annotations

import base64
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from notifiers import verify_standard
from notifiers.channels.signing import secret_key, signed_headers
from standardwebhooks import Webhook

NOW = 1_700_000_000
KEYS = st.binary(min_size=1, max_size=64)
IDS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=300), key=KEYS, delivery_key=IDS)
def test_any_text_body_and_key_signed_verifies_with_the_reference_library(body: str, key: bytes,
                                                                          delivery_key: str) -> None:
    data = body.encode()
    headers = signed_headers("standard", key, data, delivery_key, int(time.time()))
    Webhook("whsec_" + base64.b64encode(key).decode()).verify(data, headers, json_parse=False)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), key=KEYS, delivery_key=IDS)
def test_any_body_signed_verifies_and_any_other_body_does_not(body: bytes, key: bytes, delivery_key: str) -> None:
    headers = signed_headers("standard", key, body, delivery_key, NOW)
    assert verify_standard(body, headers, key, now=NOW)
    assert not verify_standard(body + b"x", headers, key, now=NOW)


@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("whsec_")))
def test_a_raw_text_secret_is_its_utf8_bytes(secret: str) -> None:
    assert secret_key(secret) == secret.encode()


@settings(max_examples=500, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "Webhook-Id",
                                                "other"]),
                               st.one_of(st.text(max_size=80), st.binary(max_size=20), st.none(), st.integers())),
       secret=st.one_of(st.text(max_size=30), st.binary(max_size=30), st.none(), st.integers()))
def test_verify_standard_never_raises_on_hostile_headers_or_secrets(headers: dict[str, object], secret: object) -> None:
    assert verify_standard(b"{}", headers, secret, now=NOW) in (True, False)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(signature=st.text(max_size=120))
def test_verify_standard_is_false_for_any_forged_signature(signature: str) -> None:
    headers = {"webhook-id": "k-1", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    assert verify_standard(b"{}", headers, b"key", now=NOW) is False
