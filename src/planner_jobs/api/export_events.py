"""Live export status for `GET /api/exports/{id}/events`: one database connection per API
process, listening, fanned out in memory to every open stream.

The database announces each change of an export's status with the export's row
(`NOTIFY planner_export_status`, migration 0015). The watch holds one connection of its own
(direct: PgBouncer in transaction pooling mode cannot hold a LISTEN), on which it also reads
the export each new stream starts from: the streams' first reads, gathered, are one query
between two waits for notifications (`POLL_SECONDS`), and a stream is registered right after its
read, in the same task, so that no change falls between its first answer and the next. After
that a stream never queries the database; one whose client goes away is forgotten at once.
When the connection is lost, the watch connects again and hands every stream its export as it
is then (a change may have passed unheard).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from planner_jobs.db import exports as db
from planner_jobs.db.engine import connect_kwargs, first_line

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # the longest a new stream waits for its first read
RECONNECT_SECONDS = 1.0
KEEPALIVE_SECONDS = 14.0  # a comment line at least every 15 s keeps proxies from closing it

Connection = psycopg.AsyncConnection[tuple[object, ...]]


@dataclass(frozen=True, eq=False)  # each stream is its own
class Following:
    """A stream's export as it was first read, then each of its changes as they come."""

    export: db.ExportJobRow
    changes: asyncio.Queue[db.ExportJobRow] = field(default_factory=asyncio.Queue)


@dataclass(frozen=True)
class _Ask:
    export_id: uuid.UUID
    user_id: uuid.UUID
    answer: asyncio.Future[Following | None]


class ExportWatch:
    """Follows exports for the event streams of one API process (on its event loop)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = make_conninfo(conninfo, **connect_kwargs("planner-jobs export events"))
        self._streams: dict[uuid.UUID, set[Following]] = {}
        self._asks: list[_Ask] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def streams(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    @contextlib.asynccontextmanager
    async def following(
        self, export_id: uuid.UUID, *, user_id: uuid.UUID
    ) -> AsyncIterator[Following | None]:
        """The user's export and its changes from then on (None: the user has no such export),
        until the context ends."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="export events")
        ask = _Ask(export_id, user_id, asyncio.get_running_loop().create_future())
        self._asks.append(ask)
        following = None
        try:
            following = await ask.answer
            yield following
        finally:
            if ask in self._asks:
                self._asks.remove(ask)
            if following is None and ask.answer.done() and not ask.answer.cancelled():
                following = ask.answer.result()  # answered as its request was cancelled
            if following is not None:
                self._forget(following)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _forget(self, following: Following) -> None:
        streams = self._streams.get(following.export.id)
        if streams is not None:
            streams.discard(following)
            if not streams:
                del self._streams[following.export.id]

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {db.STATUS_CHANNEL}")
                    if not first:  # changes may have passed while it was away
                        await self._read_again(connection)
                    first = False
                    while True:
                        if self._asks:
                            await self._answer(connection)
                        async for notify in connection.notifies(timeout=POLL_SECONDS):
                            self._hand_out(notify.payload)
            except (psycopg.OperationalError, OSError) as exc:
                log.warning(
                    "export events: the database connection failed (%s); again in %.0f s",
                    first_line(exc),
                    RECONNECT_SECONDS,
                )
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _answer(self, connection: Connection) -> None:
        """Read the exports new streams ask for, in one query, and register each stream."""
        asks, self._asks = self._asks, []
        rows = {row.id: row for row in await db.jobs_by_id(connection, [a.export_id for a in asks])}
        for ask in asks:
            if ask.answer.done():  # its request is gone meanwhile
                continue
            row = rows.get(ask.export_id)
            if row is None or row.user_id != ask.user_id:
                ask.answer.set_result(None)
                continue
            following = Following(row)
            self._streams.setdefault(row.id, set()).add(following)
            ask.answer.set_result(following)

    def _hand_out(self, payload: str) -> None:
        try:
            row = db.announced_job(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("export events: a notification that is no export: %.100r", payload)
            return
        for following in self._streams.get(row.id, ()):
            following.changes.put_nowait(row)

    async def _read_again(self, connection: Connection) -> None:
        """Every stream's export as it is now (after the connection was lost)."""
        if self._streams:
            for row in await db.jobs_by_id(connection, list(self._streams)):
                for following in self._streams.get(row.id, ()):
                    following.changes.put_nowait(row)


class ExportEvents(Response):
    """The event stream of one export, on the ASGI interface itself: an event `status` with
    `shown(export)` at once and on each change of status, until a final one; a comment line
    when nothing was sent for `KEEPALIVE_SECONDS`; the end as soon as the client goes away.

    Measured with 1,000 streams open on one API process: FastAPI's generator-driven
    `EventSourceResponse` (a task group, two tasks and two memory streams per stream) held 65 KB
    a stream; this holds the stream's queue and the one task waiting for its client."""

    media_type = "text/event-stream"

    def __init__(
        self,
        following: Following,
        shown: Callable[[db.ExportJobRow], dict[str, Any]],
        *,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        super().__init__(headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        # No length: the body is sent as it comes (chunked), for as long as the stream lasts.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._following = following
        self._shown = shown
        self._keepalive = keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        gone = asyncio.ensure_future(_disconnected(receive))
        change: asyncio.Future[db.ExportJobRow] | None = None
        job, shown = self._following.export, None
        try:
            while True:
                if job.status != shown:
                    await send(_chunk(_event("status", self._shown(job))))
                    shown = job.status
                if job.status in db.FINAL_STATUSES:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                change = change or asyncio.ensure_future(self._following.changes.get())
                either: set[asyncio.Future[Any]] = {change, gone}
                done, _ = await asyncio.wait(
                    either, timeout=self._keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                if gone in done:
                    return
                if change in done:
                    job, change = change.result(), None
                else:
                    await send(_chunk(b": keep-alive\n\n"))
        except OSError:  # the client went away while being written to
            return
        finally:
            for waiting in (gone, change):
                if waiting is not None:
                    waiting.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunk(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": True}
