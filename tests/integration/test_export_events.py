"""`GET /api/exports/{id}/events`: an export's status as Server-Sent Events, driven by the
database's notifications through one listening connection per API process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from planner_jobs.api.app import create_app
from planner_jobs.api.export_events import ExportEvents
from planner_jobs.jobs.exports import request_export
from planner_jobs.runtime import Runtime
from tests.data import add_user, utc
from tests.integration.conftest import bearer, work


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def new_user(runtime: Runtime) -> uuid.UUID:
    with runtime.engine.begin() as c:
        return add_user(c, created_at=utc("2026-03-01T08:00"))


@dataclass
class Stream:
    """The events of one stream, read in a thread of their own as they come."""

    events: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    ended: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)

    def statuses(self) -> list[str]:
        return [data["status"] for _, data, _ in self.events]


def follow(client: TestClient, url: str, headers: dict[str, str]) -> Stream:
    stream = Stream()

    def read() -> None:
        try:
            with client.stream("GET", url, headers=headers) as response:
                stream.status_code = response.status_code
                stream.headers = dict(response.headers)
                stream.opened.set()
                event, data = "", ""
                for line in response.iter_lines():
                    if line.startswith(":"):
                        stream.comments.append(line)
                    elif line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        data += line.removeprefix("data: ")
                    elif line == "" and data:
                        stream.events.append((event, json.loads(data), time.monotonic()))
                        event, data = "", ""
        finally:
            stream.opened.set()
            stream.ended.set()

    threading.Thread(target=read, daemon=True).start()
    assert stream.opened.wait(10)
    return stream


def wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_stream_shows_each_status_as_it_changes_then_ends(
    client: TestClient, runtime: Runtime
) -> None:
    user = new_user(runtime)
    export = request_export(runtime.engine, user, "json").job
    url = f"/api/exports/{export.id}/events"

    stream = follow(client, url, bearer(runtime, user))
    wait_for(lambda: len(stream.events) == 1)
    work(runtime, "exports")

    assert stream.ended.wait(10)
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in stream.headers  # sent as it comes, for as long as it lasts
    assert [event for event, _, _ in stream.events] == ["status"] * 3
    assert stream.statuses() == ["pending", "processing", "complete"]
    final = stream.events[-1][1]
    shown = client.get(f"/api/exports/{export.id}", headers=bearer(runtime, user)).json()
    assert {k: v for k, v in final.items() if k != "downloadUrl"} == {
        k: v for k, v in shown.items() if k != "downloadUrl"
    }
    assert final["downloadUrl"].startswith("http")
    assert client.app.state.export_watch.streams == 0  # type: ignore[attr-defined]


def test_an_export_already_final_is_one_event(client: TestClient, runtime: Runtime) -> None:
    user = new_user(runtime)
    export = request_export(runtime.engine, user, "csv").job
    work(runtime, "exports")

    stream = follow(client, f"/api/exports/{export.id}/events", bearer(runtime, user))

    assert stream.ended.wait(10)
    assert stream.statuses() == ["complete"]


def test_a_failure_ends_the_stream(client: TestClient, runtime: Runtime) -> None:
    user = new_user(runtime)
    export = request_export(runtime.engine, user, "csv").job
    stream = follow(client, f"/api/exports/{export.id}/events", bearer(runtime, user))
    wait_for(lambda: len(stream.events) == 1)

    with runtime.engine.begin() as c:  # as the worker gives up on it
        c.execute(
            sa.text("UPDATE export_jobs SET status = 'failed', error = 'it broke' WHERE id = :e"),
            {"e": export.id},
        )

    assert stream.ended.wait(10)
    assert stream.statuses() == ["pending", "failed"]
    assert stream.events[-1][1]["error"] == "it broke"


def test_another_users_export_is_404_and_no_token_401(client: TestClient, runtime: Runtime) -> None:
    owner, other = new_user(runtime), new_user(runtime)
    export = request_export(runtime.engine, owner, "json").job
    url = f"/api/exports/{export.id}/events"

    assert client.get(url, headers=bearer(runtime, other)).status_code == 404
    assert (
        client.get(
            f"/api/exports/{uuid.uuid4()}/events", headers=bearer(runtime, owner)
        ).status_code
        == 404
    )
    assert client.get(url).status_code == 401


def test_many_streams_share_one_database_connection_and_a_client_leaving_frees_its_own(
    client: TestClient, runtime: Runtime
) -> None:
    users = [new_user(runtime) for _ in range(20)]
    exports = [request_export(runtime.engine, u, "json").job for u in users]
    streams = [
        follow(client, f"/api/exports/{e.id}/events", bearer(runtime, u))
        for e, u in zip(exports, users, strict=True)
    ]
    wait_for(lambda: all(len(s.events) == 1 for s in streams))
    watch = client.app.state.export_watch  # type: ignore[attr-defined]

    with runtime.engine.connect() as c:
        listening = c.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'planner-jobs export events'"
            )
        )
    assert listening == 1
    assert watch.streams == 20

    work(runtime, "exports")

    for stream in streams:
        assert stream.ended.wait(10)
        assert stream.statuses()[-1] == "complete"
    wait_for(lambda: watch.streams == 0)


def test_a_quiet_stream_gets_a_comment_line_to_keep_it_open(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ExportEvents.__init__, "__kwdefaults__", {"keepalive": 0.2})
    user = new_user(runtime)
    export = request_export(runtime.engine, user, "json").job

    stream = follow(client, f"/api/exports/{export.id}/events", bearer(runtime, user))
    wait_for(lambda: len(stream.comments) >= 2)

    assert stream.statuses() == ["pending"]
    work(runtime, "exports")
    assert stream.ended.wait(10)


def test_a_client_that_goes_away_is_forgotten_at_once(client: TestClient, runtime: Runtime) -> None:
    user = new_user(runtime)
    export = request_export(runtime.engine, user, "json").job
    watch = client.app.state.export_watch  # type: ignore[attr-defined]

    with client.stream(
        "GET", f"/api/exports/{export.id}/events", headers=bearer(runtime, user)
    ) as response:
        lines = response.iter_lines()
        assert next(lines) == "event: status"
        assert watch.streams == 1

    wait_for(lambda: watch.streams == 0, timeout=2)
