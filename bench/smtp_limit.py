"""The SMTP server's limit: a minimal smtplib client sending prebuilt mails as fast as the server takes them.

Run by ``bench/versus.py`` as 2 processes (``python -m bench.smtp_limit HOST PORT COUNT THREADS``)
of 8 threads each, the worker's shape, each thread over one kept connection: no broker, no
database, no message to build. What Tidings' workers reach is reported as a fraction of it.
"""

from __future__ import annotations

import smtplib
import sys
import threading


def mail(number: int) -> bytes:
    """A plain mail like the ones the workers send."""
    return (f"Subject: Task {number} finished\r\nFrom: Tidings <tidings@localhost>\r\nTo: w{number}@example.com\r\n"
            f"Message-ID: <limit{number}@localhost>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
            f"Hello, task {number} is finished.\r\n").encode("ascii")


def send(host: str, port: int, numbers: range) -> None:
    """Send mails ``numbers`` over one connection."""
    connection = smtplib.SMTP(host, port, timeout=30)
    try:
        for number in numbers:
            connection.sendmail("tidings@localhost", [f"w{number}@example.com"], mail(number))
    finally:
        connection.quit()


def main(host: str, port: int, count: int, threads: int) -> None:
    """``count`` mails over ``threads`` threads."""
    workers = [threading.Thread(target=send, args=(host, port, range(n, count, threads))) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
