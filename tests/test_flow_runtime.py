"""The shared flow fixture: a flow under the harness sees the test database and its run id;
the flow heartbeat stops with its run."""

from __future__ import annotations

import logging
import threading

from prefect import flow, flow_engine
from sqlalchemy.engine import Engine

from flows import runtime
from flows.runtime import current_run_id, database


@flow
def _probe() -> tuple[str, str | None]:
    return database().url.render_as_string(hide_password=False), current_run_id()


def test_flows_use_the_test_database_and_know_their_run_id(flow_env: Engine) -> None:
    url, run_id = _probe()
    assert url == flow_env.url.render_as_string(hide_password=False)
    assert run_id is not None and len(run_id) == 36


class _Engine:
    """What the heartbeat reads of Prefect's flow run engine."""

    heartbeat_seconds: int | None = 30
    flow_run = None
    logger = logging.getLogger("test")

    def __init__(self) -> None:
        self.beats: list[threading.Thread] = []

    def _build_heartbeat_event_template(self) -> tuple[dict[str, str], list[str]]:
        return {"prefect.resource.id": "flow-run"}, []

    def _emit_flow_run_heartbeat(self, resource: object, related: object) -> None:
        self.beats.append(threading.current_thread())


def test_flow_runs_use_the_heartbeat_that_stops_with_the_run() -> None:
    assert flow_engine._send_heartbeats is runtime._send_heartbeats
    engine = _Engine()
    with runtime._send_heartbeats(engine):
        while not engine.beats:  # the first heartbeat goes when the run starts
            threading.Event().wait(0.01)
    assert len(engine.beats) == 1
    assert not engine.beats[0].is_alive(), "the heartbeat ends with its flow run"


def test_no_heartbeat_thread_when_heartbeats_are_off() -> None:
    engine = _Engine()
    engine.heartbeat_seconds = None
    before = threading.active_count()
    with runtime._send_heartbeats(engine):
        assert threading.active_count() == before
    assert engine.beats == []
