"""`tiflow demo` run once for the folder's tests, in-process under the session Prefect harness,
with TIFLOW_DATA_DIR in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from models.db import make_engine
from tiflow.cli import app
from tiflow.cli.common import console
from tiflow.cli.french import err_console


@dataclass(frozen=True)
class Eml:
    path: Path
    kind: str  # from the file name: <time>_<kind>.<digest>_<recipient>.eml
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")

    def attachments(self) -> dict[str, bytes]:
        found = {}
        for part in self.message.iter_attachments():
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            found[str(part.get_filename())] = data
        return found


@dataclass(frozen=True)
class DemoRun:
    result: Result
    data_dir: Path
    folder: Path  # TIFLOW_DATA_DIR/demo
    engine: Engine  # the demo's SQLite database
    emails: list[Eml]

    @property
    def output(self) -> str:
        return self.result.stdout

    def of_kind(self, kind: str) -> list[Eml]:
        return [e for e in self.emails if e.kind == kind]


def read_emails(folder: Path) -> list[Eml]:
    parser = BytesParser(policy=policy.default)
    emails = []
    for path in sorted(folder.glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        emails.append(Eml(path, path.name.split("_")[1].split(".")[0], message))
    return emails


@pytest.fixture(scope="session")
def demo_run(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    data_dir = tmp_path_factory.mktemp("demo-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(console, "_width", 200)  # one line per table row, whatever COLUMNS is
        patch.setattr(err_console, "_width", 200)
        result = CliRunner().invoke(
            app,
            ["demo"],
            env={"TIFLOW_DATA_DIR": str(data_dir), "NO_COLOR": "1", "TIFLOW_NOTIFY_CONFIG": ""},
            prog_name="tiflow",
        )
    assert result.exit_code == 0, result.output
    folder = data_dir / "demo"
    engine = make_engine(f"sqlite:///{folder / 'tiflow-demo.db'}")
    yield DemoRun(result, data_dir, folder, engine, read_emails(folder / "outbox"))
    engine.dispose()
