"""The notes of pitfalls.md about apprise that tiflow relies on, re-checked on the locked
apprise (2.0.x) where no other test of this folder covers them: each test shows apprise's own
behaviour, then what tiflow does about it."""

from __future__ import annotations

from pathlib import Path

import apprise
import pytest

from notifications.config import ConfigError, load_services, smtp_channel

SENDER = "from=tiflow@grand-est-touraine.example"


def test_apprise_drops_a_tags_prefix_so_tiflow_parses_it_itself() -> None:
    apobj = apprise.Apprise()
    assert apobj.add("pilots,copil=json://127.0.0.1:9/")
    assert [set(server.tags) for server in apobj] == [set()]
    (server,) = load_services("pilots,copil=json://127.0.0.1:9/")
    assert set(server.tags) == {"pilots", "copil"}


def test_a_mailto_url_with_an_ip_host_needs_a_sender() -> None:
    assert not apprise.Apprise().add("mailto://127.0.0.1:2525")
    assert apprise.Apprise().add(f"mailto://127.0.0.1:2525?{SENDER}")
    with pytest.raises(ConfigError, match="URL apprise invalide"):
        load_services("coordinator=mailto://127.0.0.1:2525")


def test_a_line_break_in_to_adds_a_recipient_in_apprise_and_is_refused_by_tiflow() -> None:
    url = f"mailto://127.0.0.1:2525?{SENDER}&to=claire.moreau@example.org%0D%0ACc:%20x@evil.example"
    apobj = apprise.Apprise()
    assert apobj.add(url)
    (server,) = apobj
    assert "x@evil.example" in [address for _, address in server.targets]
    with pytest.raises(ConfigError, match="saut de ligne encodé"):
        load_services(f"coordinator={url}")


def test_a_line_break_in_name_replaces_the_sender_in_apprise_and_is_refused_by_tiflow(
    tmp_path: Path,
) -> None:
    url = f"mailto://127.0.0.1:2525?{SENDER}&name=Tiflow%0D%0ABcc:%20x@evil.example"
    apobj = apprise.Apprise()
    assert apobj.add(url)
    (server,) = apobj
    assert server.from_addr[1] == "x@evil.example"
    with pytest.raises(ConfigError, match="saut de ligne encodé"):
        load_services(f"coordinator={url}")
    config = tmp_path / "apprise.txt"
    config.write_text(f"coordinator={url}\n", encoding="utf-8")
    config.chmod(0o600)  # a configuration file must be private (issue 19)
    with pytest.raises(ConfigError, match="saut de ligne encodé"):
        load_services(str(config))


def test_a_plain_mailto_url_gives_the_sender_and_the_coordinators_address() -> None:
    (server,) = load_services(
        f"coordinator=mailto://127.0.0.1:2525?{SENDER}&to=claire.moreau@example.org"
    )
    channel = smtp_channel(server)
    assert channel.sender_addr == "tiflow@grand-est-touraine.example"
    assert channel.targets == ("claire.moreau@example.org",)
