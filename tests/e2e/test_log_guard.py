"""The guard of the end-to-end modules reads a Prefect server's log: it must see the errors a
broken scheduler or loop service writes there, and nothing in a clean start."""

from __future__ import annotations

from tests.e2e.scheduling import BANNER, server_errors

CLEAN_START = f"""
 ___ ___ ___ ___ ___ ___ _____
| _ \\ _ \\ __| __| __/ __|_   _|
Configure Prefect to communicate with the server with:

    prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api

{BANNER} http://127.0.0.1:4200/docs

Check out the dashboard at http://127.0.0.1:4200
"""

# The shape of the log of issue 11 (prefect 3.8.8 with SQLAlchemy 2.1): the scheduler loop
# failing on every pass.
BROKEN_SCHEDULER = "\n".join(
    [
        "12:00:05.120 | ERROR   | prefect.server.services.scheduler - Unexpected error in:"
        " schedule_deployments",
        "Traceback (most recent call last):",
        '  File ".../prefect/server/services/scheduler.py", line 262, in schedule_deployments',
        "    await models.deployments._insert_scheduled_flow_runs(session=session, runs=runs)",
        "sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement; please supply a"
        " bulk_dml decorated function",
    ]
)
ASGI_ERROR = "ERROR:    Exception in ASGI application\n"


def test_a_clean_start_has_no_error() -> None:
    assert server_errors(CLEAN_START) == []


def test_a_failing_loop_service_is_seen() -> None:
    found = server_errors(CLEAN_START + BROKEN_SCHEDULER)
    assert found[0].startswith("12:00:05.120 | ERROR   | prefect.server.services.scheduler")
    assert found[1].startswith("Traceback")
    assert found[2].startswith("sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML")


def test_an_endpoint_error_is_seen() -> None:
    assert server_errors(CLEAN_START + ASGI_ERROR) == [ASGI_ERROR.strip()]
