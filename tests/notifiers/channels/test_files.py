from __future__ import annotations

import email
import email.policy
from pathlib import Path

from notifiers import Email, FileChannel, Recipient


def test_each_message_is_one_eml_file_named_by_its_key(tmp_path: Path) -> None:
    channel = FileChannel(tmp_path / "mail", sender="Shop <shop@example.com>")
    channel.send(Email(subject="Hi", text="body"), Recipient("ann@example.com", "Ann"), key="k1")
    channel.send(Email(subject="Hi", text="body"), Recipient("ann@example.com", "Ann"), key="k1")
    files = list((tmp_path / "mail").iterdir())
    assert [f.name for f in files] == ["k1.eml"]
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert (message["Subject"], message["To"], message["From"]) == ("Hi", "Ann <ann@example.com>",
                                                                    "Shop <shop@example.com>")
