"""verify_signature on hostile input: any malformed header is False, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from notifiers import verify_signature
from notifiers.channels.signing import _hex as _sign

SECRET = b"whsec-4f2a"
BODY = b'{"key":"k-1"}'
NOW = 1_700_000_000
SIGNATURE = _sign(SECRET, NOW, BODY)
VALID = f"t={NOW},v1={SIGNATURE}"
AT = NOW + 0.5  # a receiver's clock, as time.time() gives it


def test_a_valid_header_verifies() -> None:
    assert verify_signature(BODY, VALID, SECRET, now=AT)


def test_a_timestamp_of_hundreds_of_digits_is_false_not_an_overflow() -> None:
    assert verify_signature(BODY, "t=" + "9" * 400 + f",v1={SIGNATURE}", SECRET) is False


def test_a_header_that_is_not_text_is_false() -> None:
    assert verify_signature(BODY, VALID.encode(), SECRET, now=AT) is False  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_other_header_text_is_false(header: str) -> None:
    assert verify_signature(BODY, header, SECRET, now=AT) is False


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.text("0123456789", min_size=1, max_size=20),
                  st.text("123456789", min_size=300, max_size=500))
       .filter(lambda stamp: stamp.lstrip("0") != str(NOW)))
def test_a_valid_header_with_any_other_timestamp_is_false(stamp: str) -> None:
    assert verify_signature(BODY, f"t={stamp},v1={SIGNATURE}", SECRET, now=AT) is False


@settings(max_examples=200, deadline=None)
@given(st.text().filter(lambda signature: signature.strip() != SIGNATURE))
def test_a_valid_header_with_any_other_signature_is_false(signature: str) -> None:
    assert verify_signature(BODY, f"t={NOW},v1={signature}", SECRET, now=AT) is False


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID)), st.integers(0, len(VALID)), st.text())
def test_any_edit_of_a_valid_header_answers_true_or_false(start: int, end: int, text: str) -> None:
    header = VALID[:min(start, end)] + text + VALID[max(start, end):]
    answer = verify_signature(BODY, header, SECRET, now=AT)
    assert answer is False or f"v1={SIGNATURE}" in header  # a bool, and True only if the signature survived
