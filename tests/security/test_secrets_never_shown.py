"""A configured SMTP password (and any password in a notification URL) appears in no log line,
artifact, CLI output or stored error: delivery through a real aiosmtpd with AUTH, a refused
login, a refused connection and a failing non-e-mail channel, run by `tiflow run envoi`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from models.db import make_engine, upgrade
from models.outbox import OutboxMessage
from models.settings import load_settings
from models.uow import UnitOfWork
from notifications.config import ConfigError, load_services, mask_secrets
from notifications.outbox import NewMessage, enqueue
from tests.cli.conftest import run_on
from tests.smtp_sink import SmtpSink, free_port, running_sink
from tiflow.serve import check_notifications

GOOD = "Vrai-Mot-De-Passe-19"  # the sink accepts it
WRONG = "Ancien-Mot-De-Passe-19"  # the sink refuses it (535)
UNREACHABLE = "Mot-De-Passe-Injoignable-19"  # nobody listens on that port
CHANNEL = "Jeton-Du-Canal-Json-19"  # a non-e-mail channel's password
SECRETS = (GOOD, WRONG, UNREACHABLE, CHANNEL)
SENDER = "tiflow@grand-est-touraine.example"


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_sink(credentials=("tiflow", GOOD)) as running:
        yield running


class Captured(logging.Handler):
    """Every record of tiflow's and apprise's loggers, DEBUG included, formatted."""

    LOGGERS = ("models", "notifications", "flows", "tiflow", "apprise")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Handlers on the loggers themselves: Prefect re-configures the root logger's handlers
    when a flow runs, which would silently drop pytest's caplog."""
    handler = Captured()
    loggers = [logging.getLogger(name) for name in Captured.LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _config(sink: SmtpSink) -> str:
    closed = free_port()
    return " ".join(
        [
            f"copil=mailto://tiflow:{GOOD}@127.0.0.1:{sink.port}?from={SENDER}",
            f"coordinator=mailto://tiflow:{WRONG}@127.0.0.1:{sink.port}?from={SENDER}",
            f"pilots=mailto://tiflow:{UNREACHABLE}@127.0.0.1:{closed}?from={SENDER}",
            f"coordinator=json://tiflow:{CHANNEL}@127.0.0.1:{closed}/",
        ]
    )


def _messages() -> list[NewMessage]:
    people = {
        "copil": "Marc Aubert <marc.aubert@touraine.example>",
        "coordinator": "Claire Moreau <claire.moreau@grand-est-touraine.example>",
        "pilots": "Karim Haddad <karim.haddad@cc-tev.example>",
    }
    return [
        NewMessage(
            f"secret:{tag}", "note", tag, [to], f"Essai {tag}", "Bonjour", channels=tag != "pilots"
        )
        for tag, to in people.items()
    ]


def _last_attempt(engine: sa.Engine) -> None:
    """Every row on its last allowed attempt: failures are final, so the artifact lists them."""
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.update(OutboxMessage.__table__).values({m.attempts: 7}))


def test_no_password_in_logs_artifact_cli_output_or_stored_errors(
    prefect_harness: None,
    sink: SmtpSink,
    database_url: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    captured: Captured,
) -> None:
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    url = database_url("sqlite")
    engine = make_engine(url)
    upgrade(engine)
    with UnitOfWork(engine) as uow:
        enqueue(uow, _messages())
        uow.commit()
    _last_attempt(engine)
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", _config(sink))

    # Without --journal: Prefect's console handler would write to the closed stream of an earlier
    # CliRunner in the session; the run's logs are read from the Prefect API below.
    result = run_on(url, tmp_path)("run", "envoi")

    assert result.exit_code == 0, result.output
    assert "Cette tournée : 1 envoyé," in result.output and "en échec" in result.output
    assert _leaks(result.output) == []
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        failed = conn.execute(sa.select(m.tag, m.last_error).where(m.status == "failed"))
        stored = {row.tag: row.last_error for row in failed}
    assert "535" in stored["coordinator"] and "connexion refusée" in stored["pilots"]
    assert "json://tiflow:****@127.0.0.1" in stored["coordinator"]  # shown, masked
    assert _leaks(" ".join(stored.values())) == []
    artifact = Artifact.get("envoi-messages-en-attente")
    assert artifact is not None and "connexion refusée" in str(artifact.data)
    assert _leaks(str(artifact.data)) == []
    APILogHandler().flush()  # the run's logs reach the server in batches
    with get_client(sync_client=True) as client:
        prefect_logs = [log.message for log in client.read_logs(limit=200)]
    assert prefect_logs and _leaks("\n".join(prefect_logs)) == []
    assert any("connexion refusée" in line for line in captured.lines)
    assert _leaks("\n".join(captured.lines)) == []
    assert [r.rcpt_tos for r in sink.received] == [("marc.aubert@touraine.example",)]
    assert _leaks(sink.received[0].message.as_string()) == []


def test_a_world_readable_apprise_file_stops_tiflow_from_starting(
    sink: SmtpSink,
    database_url: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "apprise.txt"
    config.write_text(f"copil=mailto://tiflow:{GOOD}@127.0.0.1:{sink.port}?from={SENDER}\n")
    config.chmod(0o644)
    monkeypatch.setenv("TIFLOW_NOTIFY_CONFIG", str(config))

    result = run_on(database_url("sqlite"), tmp_path)("serve")

    assert result.exit_code == 1
    assert "Configuration des notifications refusée" in result.output
    assert "accessible à tous les comptes de la machine (droits 644)" in result.output
    assert f"chmod 600 {config}" in result.output
    assert _leaks(result.output) == []
    for mode in (0o640, 0o600):  # readable by the service account (and its group) only
        config.chmod(mode)
        check_notifications(load_settings())
        assert [s.url(privacy=True) for s in load_services(str(config))]
    config.chmod(0o604)
    with pytest.raises(ConfigError):
        load_services(str(config))


def test_a_refused_inline_configuration_is_shown_masked(
    database_url: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No tag: refused (it would never be used), and the message shows the URL, masked.
    monkeypatch.setenv(
        "TIFLOW_NOTIFY_CONFIG", f"mailto://tiflow:{GOOD}@127.0.0.1:2525?from={SENDER}"
    )

    result = run_on(database_url("sqlite"), tmp_path)("serve")

    assert result.exit_code == 1 and "n'a pas d'étiquette" in result.output
    assert _leaks(result.output) == []


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "SMTP refused mailtos://tiflow:S3cret@smtp.example.org?from=a@b.example",
            "SMTP refused mailtos://tiflow:****@smtp.example.org?from=a@b.example",
        ),
        (
            "mailtos://smtp.example.org?user=tiflow&pass=S3cret&from=a@b.example",
            "mailtos://smtp.example.org?user=tiflow&pass=****&from=a@b.example",
        ),
        ("535 authentication failed for S3cret", "535 authentication failed for ****"),
        ("rien à cacher : tiflow@example.org", "rien à cacher : tiflow@example.org"),
        (
            "mailto://127.0.0.1:2525?from=tiflow@example.org",  # a port, not a password
            "mailto://127.0.0.1:2525?from=tiflow@example.org",
        ),
    ],
)
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text, known=["S3cret"]) == masked
