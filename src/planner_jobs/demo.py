"""`planner-jobs demo`: something to watch on a fresh clone (development only).

Fills the database with demo users in many time zones (days past to close, plans, routines,
reminders due in the next minutes), subscribes each to a push receiver served here (it decrypts
what it gets, as a browser would, and prints it), requests an export, then runs the service, so
the dashboard shows closed user-days, reminders delivered and a completed export within a minute.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from planner_jobs.push.keys import b64url

log = logging.getLogger(__name__)

ZONES = (
    "Pacific/Kiritimati",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "Asia/Tokyo",
    "Asia/Kathmandu",
    "Africa/Cairo",
    "Europe/Berlin",
    "Europe/London",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Pago_Pago",
)
TASK_TITLES = (
    "Review the week's goals",
    "Call the dentist",
    "Write the project update",
    "Go for a 30-minute walk",
    "Plan tomorrow",
    "Read a chapter",
)
ROUTINE_STEPS = ("Stretch", "Glass of water", "Journal", "Inbox zero")


@dataclass
class Browser:
    """A browser's push subscription keys (the private half stays here), and what it shows of a
    push: the decrypted payload. The demo's receiver and the tests' use it."""

    name: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def read(self, body: bytes) -> Any:
        return json.loads(
            http_ece.decrypt(
                body,
                private_key=self.private_key,
                auth_secret=self.auth_secret,
                version="aes128gcm",
            )
        )


class DemoReceiver:
    """A push service and its browsers on 127.0.0.1: decrypts each push and prints it."""

    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                browser = receiver.browsers.get(self.path.rsplit("/", 1)[-1])
                status = 404 if browser is None else 201
                if browser is not None:
                    try:
                        payload = browser.read(body)
                        receiver.received += 1
                        log.info("demo browser %s shows: %s", browser.name, payload.get("title"))
                    except Exception:
                        status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(name)
        return self.browsers[name]

    def endpoint(self, name: str) -> str:
        return f"http://{self.host}/push/{name}"

    @contextmanager
    def serving(self) -> Iterator[DemoReceiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def seed(engine: sa.Engine, receiver: DemoReceiver, *, now: dt.datetime) -> list[uuid.UUID]:
    """Demo users, one per zone: a few past days each (plans of tasks, some done), a routine,
    reminders due now and in the next minutes, a push subscription to `receiver`."""
    chance = random.Random(7)  # noqa: S311 (demo data, not secrets)
    run = uuid.uuid4().hex[:6]
    users = []
    with engine.begin() as c:
        for n, zone in enumerate(ZONES):
            days_ago = 2 + n % 4
            user = c.scalar(
                sa.text(
                    "INSERT INTO users (email, timezone, created_at) VALUES (:e, :z, :t)"
                    " RETURNING id"
                ),
                {
                    "e": f"demo-{run}-{n}@example.com",
                    "z": zone,
                    "t": now - dt.timedelta(days=days_ago),
                },
            )
            users.append(user)
            today = now.date()
            for back in range(days_ago, -1, -1):
                plan = c.scalar(
                    sa.text(
                        "INSERT INTO todays_plans (user_id, plan_date) VALUES (:u, :d) RETURNING id"
                    ),
                    {"u": user, "d": today - dt.timedelta(days=back)},
                )
                for title in chance.sample(TASK_TITLES, 3):
                    done = back > 0 and chance.random() < 0.8
                    c.execute(
                        sa.text(
                            "INSERT INTO tasks (user_id, plan_id, title, completed, completed_at)"
                            " VALUES (:u, :p, :t, :c, :at)"
                        ),
                        {
                            "u": user,
                            "p": plan,
                            "t": title,
                            "c": done,
                            "at": now - dt.timedelta(days=back, hours=2) if done else None,
                        },
                    )
            routine = c.scalar(
                sa.text(
                    "INSERT INTO daily_routines (user_id, name) VALUES (:u, 'Morning') RETURNING id"
                ),
                {"u": user},
            )
            for position, step in enumerate(ROUTINE_STEPS):
                c.execute(
                    sa.text(
                        "INSERT INTO routine_tasks (routine_id, title, position)"
                        " VALUES (:r, :t, :p)"
                    ),
                    {"r": routine, "t": step, "p": position},
                )
            # Reminders: one due as the service starts, the others in the next minutes.
            for minutes in (0, 1, 2):
                c.execute(
                    sa.text("INSERT INTO tasks (user_id, title, remind_at) VALUES (:u, :t, :at)"),
                    {
                        "u": user,
                        "t": f"{chance.choice(TASK_TITLES)} ({zone})",
                        "at": now + dt.timedelta(minutes=minutes, seconds=-5),
                    },
                )
            browser = receiver.browser(f"demo-{run}-{n}")
            c.execute(
                sa.text(
                    "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)"
                    " VALUES (:u, :e, :p, :a)"
                ),
                {
                    "u": user,
                    "e": receiver.endpoint(browser.name),
                    "p": browser.p256dh,
                    "a": browser.auth,
                },
            )
    return users
