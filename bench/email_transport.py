"""Throughput of e-mail delivery: apprise per message vs tiflow's Deliverer vs plain smtplib.

Starts an aiosmtpd sink (``aiosmtpd.handlers.Sink``) on loopback in its own process, sends
N messages three ways and prints messages per second (apprise: one run; the others: best of
three); the last line is the time ratio of tiflow over plain smtplib (must stay under 3)::

    python bench/email_transport.py [N] [--busy]

``--busy`` keeps both cores spinning while it measures (bench/_common.py).
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apprise

from bench._common import busy_cores
from notifications.message import MIME_POLICY, OutgoingEmail
from notifications.templates import render
from notifications.transports import Deliverer

HOST = "127.0.0.1"
SENDER = "tiflow@example.org"
SUBJECT = "Rappel : échéance « Usine-témoin » dans 7 jours"


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    proc = subprocess.Popen(
        [*command, "-l", f"{HOST}:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the aiosmtpd sink did not start")


def recipients(n: int) -> list[str]:
    return [f"pilote.{i:04d}@cc-touraine-est-vallees.fr" for i in range(n)]


def timed(label: str, n: int, run: Callable[[int], None], repeat: int = 1) -> float:
    """Best of ``repeat`` runs (the machine's noise only ever adds time)."""
    elapsed = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run(n)
        elapsed = min(elapsed, time.perf_counter() - start)
    print(f"{label:<34} {n / elapsed:8.1f} msg/s  ({elapsed * 1000 / n:6.2f} ms/msg)")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=500, help="e-mails per way")
    parser.add_argument("--busy", action="store_true", help="keep both cores spinning")
    args = parser.parse_args()
    with busy_cores(args.busy):
        measure(args.n)


def measure(n: int) -> None:
    text, html = render(
        "generic",
        title="Échéance de l'action FA-07 « Usine-témoin »",
        greeting="Bonjour,",
        paragraphs=["L'action FA-07 arrive à échéance dans 7 jours. Merci de mettre à jour."],
        items=["Jalon : démonstrateur industrie du futur", "Budget 2024 : 12 500,00 €"],
        territory="Grand Est Touraine",
    )
    proc, port = start_sink()
    url = f"mailto://{HOST}:{port}?from={SENDER}"
    try:

        def with_apprise(count: int) -> None:
            for rcpt in recipients(count):
                apobj = apprise.Apprise()  # fresh object: no 5.5 s throttle between sends
                apobj.add(f"{url}&to={rcpt}", tag="pilots")
                for server in apobj:
                    server.request_rate_per_sec = 0
                apobj.notify(body=html, title=SUBJECT, body_format="html", tag="pilots")

        def with_tiflow(count: int) -> None:
            with Deliverer(f"pilots={url}") as deliverer:
                for rcpt in recipients(count):
                    email = OutgoingEmail(to=[rcpt], subject=SUBJECT, text=text, html=html)
                    results = deliverer.deliver(email, "pilots")
                    assert results[0].ok, results

        def with_smtplib(count: int) -> None:
            with smtplib.SMTP(HOST, port) as conn:
                for rcpt in recipients(count):
                    msg = EmailMessage(policy=MIME_POLICY)
                    msg["From"], msg["To"], msg["Subject"] = SENDER, rcpt, SUBJECT
                    msg.set_content(text)
                    msg.add_alternative(html, subtype="html")
                    conn.send_message(msg)

        for warm_up in (with_apprise, with_tiflow, with_smtplib):
            warm_up(5)
        print(f"{n} e-mails (text + HTML) to an aiosmtpd sink on loopback, separate process")
        timed("(a) apprise.notify per message", n, with_apprise)
        tiflow = timed("(b) tiflow Deliverer, best of 3", n, with_tiflow, repeat=3)
        plain = timed("(c) smtplib 1 connection, best of 3", n, with_smtplib, repeat=3)
        print(f"ratio: {tiflow / plain:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
