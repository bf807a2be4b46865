"""The shared flow fixture: a flow under the harness sees the test database and its run id."""

from __future__ import annotations

from prefect import flow
from sqlalchemy.engine import Engine

from flows.runtime import current_run_id, database


@flow
def _probe() -> tuple[str, str | None]:
    return database().url.render_as_string(hide_password=False), current_run_id()


def test_flows_use_the_test_database_and_know_their_run_id(flow_env: Engine) -> None:
    url, run_id = _probe()
    assert url == flow_env.url.render_as_string(hide_password=False)
    assert run_id is not None and len(run_id) == 36
