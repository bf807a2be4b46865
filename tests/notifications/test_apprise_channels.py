"""Non-e-mail channels go through apprise; configuration by URL, file and environment."""

from __future__ import annotations

import time
from pathlib import Path

import apprise
import pytest

from notifications.message import OutgoingEmail
from notifications.transports import ENV_VAR, ConfigError, Deliverer
from tests.notifications.http_sink import JsonReceiver
from tests.smtp_sink import SmtpSink

MARIE = "marie.dupont@cc-tev.fr"
SUBJECT = "Rappel\u00a0: échéance «\u00a0Usine-témoin\u00a0» dans 7 jours"


def reminder(to: list[str]) -> OutgoingEmail:
    return OutgoingEmail(
        to=to,
        subject=SUBJECT,
        text="L'action FA-07 arrive à échéance dans 7 jours.\n",
        html="<p>L'action FA-07 arrive à échéance dans <b>7 jours</b>.</p>",
    )


def test_a_non_email_channel_gets_the_text_through_apprise(
    smtp_sink: SmtpSink, json_receiver: JsonReceiver
) -> None:
    config = f"pilots={smtp_sink.url()} pilots={json_receiver.url}"
    with Deliverer(config) as deliverer:
        mail, channel = deliverer.deliver(reminder([MARIE]), "pilots")
    assert mail.ok and mail.recipient == MARIE
    assert channel.ok and channel.recipient.startswith(json_receiver.url)
    assert channel.channel != "email"
    (post,) = json_receiver.posts
    assert post["title"] == SUBJECT
    assert post["message"].strip() == "L'action FA-07 arrive à échéance dans 7 jours."
    assert len(smtp_sink.received) == 1  # the e-mail went through tiflow, once


def test_channels_of_other_tags_are_left_alone(json_receiver: JsonReceiver) -> None:
    with Deliverer(f"copil={json_receiver.url}") as deliverer:
        assert deliverer.deliver(reminder([]), "pilots") == []
    assert json_receiver.posts == []


def test_channels_are_not_throttled_between_messages(json_receiver: JsonReceiver) -> None:
    start = time.monotonic()
    with Deliverer(f"pilots={json_receiver.url}") as deliverer:
        for _ in range(3):
            assert deliverer.deliver(reminder([]), "pilots")[0].ok
    # apprise's default throttle would wait ~5.5 s between two sends on one service.
    assert time.monotonic() - start < 2
    assert len(json_receiver.posts) == 3


def test_a_failing_channel_is_a_temporary_failure(json_receiver: JsonReceiver) -> None:
    json_receiver.status = 500
    with Deliverer(f"pilots={json_receiver.url}") as deliverer:
        (result,) = deliverer.deliver(reminder([]), "pilots")
    assert not result.ok and not result.permanent
    assert result.error


def test_only_skips_channels_already_notified(json_receiver: JsonReceiver) -> None:
    with Deliverer(f"pilots={json_receiver.url}") as deliverer:
        assert deliverer.deliver(reminder([]), "pilots", only={MARIE}) == []
    assert json_receiver.posts == []


def test_apprise_without_a_tag_notifies_everybody(json_receiver: JsonReceiver) -> None:
    # The pitfall behind check_tag(): still true on the apprise we lock.
    apobj = apprise.Apprise()
    apobj.add(json_receiver.url, tag="copil")
    assert apobj.notify(body="pour tout le monde", title="sans tag")
    assert len(json_receiver.posts) == 1


def test_yaml_config_file_with_tags(
    tmp_path: Path, smtp_sink: SmtpSink, json_receiver: JsonReceiver
) -> None:
    config = tmp_path / "notify.yml"
    config.write_text(
        "version: 1\n"
        "urls:\n"
        f'  - "{smtp_sink.url()}":\n'
        "      tag: pilots, coordinator\n"
        f'  - "{json_receiver.url}":\n'
        "      tag: copil\n",
        encoding="utf-8",
    )
    config.chmod(0o600)  # holds credentials: the service account's only
    with Deliverer(str(config)) as deliverer:
        pilots = deliverer.deliver(reminder([MARIE]), "pilots")
        copil = deliverer.deliver(reminder([]), "copil")
    assert [r.recipient for r in pilots] == [MARIE]
    assert [r.ok for r in copil] == [True]
    assert len(smtp_sink.received) == 1 and len(json_receiver.posts) == 1


def test_text_config_file_and_environment(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    config = tmp_path / "notify.txt"
    config.write_text(f"# tiflow\npilots,copil={smtp_sink.url()}\n", encoding="utf-8")
    config.chmod(0o600)  # holds credentials: the service account's only
    deliverer = Deliverer.from_env(environ={ENV_VAR: str(config)})
    assert not deliverer.writes_files
    with deliverer:
        assert deliverer.deliver(reminder([MARIE]), "copil")[0].ok
    assert smtp_sink.received[0].rcpt_tos == (MARIE,)


def test_an_untagged_service_is_a_config_error_that_hides_the_password() -> None:
    with pytest.raises(ConfigError, match="n'a pas d'étiquette") as error:
        Deliverer("mailtos://tiflow:Secret-Pw-42@smtp.example.org?from=tiflow@example.org")
    assert "Secret-Pw-42" not in str(error.value)


def test_describe_lists_services_and_tags_without_passwords() -> None:
    deliverer = Deliverer("pilots,copil=mailtos://tiflow:Secret-Pw-42@smtp.example.org")
    (line,) = deliverer.describe()
    assert line.startswith("mailtos://tiflow:****@smtp.example.org")
    assert line.endswith("tags=['copil', 'pilots']")


@pytest.mark.parametrize(
    "config",
    [
        "pilots=mailto://tiflow:Secret-Pw-42@127.0.0.1:2525",  # IP host without from=
        "pilots=unknownscheme://tiflow:Secret-Pw-42@host",
        "pilots=mailto://127.0.0.1:2525?from=tiflow:Secret-Pw-42",
    ],
)
def test_bad_urls_are_config_errors_without_the_password(config: str) -> None:
    with pytest.raises(ConfigError) as error:
        Deliverer(config)
    assert "Secret-Pw-42" not in str(error.value)


def test_missing_config_file_and_missing_outbox_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="introuvable"):
        Deliverer(str(tmp_path / "absent.yml"))
    with pytest.raises(ConfigError, match="outbox"):
        Deliverer.from_env(environ={})


def test_a_bad_entry_in_a_config_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "notify.yml"
    config.write_text(
        "urls:\n"
        '  - "mailtos://tiflow:Secret-Pw-42@smtp.example.org?from=tiflow@example.org":\n'
        "      tag: pilots\n"
        '  - "mailto://tiflow:Secret-Pw-42@127.0.0.1:2525":\n'
        "      tag: copil\n",
        encoding="utf-8",
    )
    config.chmod(0o600)  # holds credentials: the service account's only
    with pytest.raises(ConfigError, match=r"notify\.yml") as error:
        Deliverer(str(config))
    assert "Secret-Pw-42" not in str(error.value)
