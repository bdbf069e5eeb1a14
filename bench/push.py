"""Benchmark: Web Push delivery by one worker process, by every way in, vs pywebpush one message at
a time.

    python bench/push.py [--messages 10000] [--url postgresql://...] [--plain] [--skip ...]

A receiver runs in its own process (`_receiver`: granian, answers 201 to every push) over HTTPS
offering HTTP/2 and HTTP/1.1, as push services do, with a self-signed certificate that the worker
and pywebpush are told to trust; with --plain over plain HTTP/1.1. MESSAGES users each get one
subscription on it. The ways measured, one after the other on the same database:
  bulk      notifications raised in batches of 500 (as reminders are), then delivered by one
            `planner-jobs worker --burst --queue notifications` process;
  sql       one `planner_notify()` call each, each in its own transaction, from 4 client
            processes (the main app's way in), while one `planner-jobs worker` process runs;
  http      `POST /internal/notifications` in batches of 500 to a `planner-jobs api` process,
            while one worker process runs;
  job       one `notifications.send` job each (`{"userId", "payload"}`), queued beforehand, then
            one worker process runs;
  latency   `planner_notify()` offered at 200 a second for 30 s by one client process: each
            message's time from its transaction to the push service's 201;
  naive     pywebpush's `webpush()` called once per message, no shared HTTP session.
Rates are end to end: from the first notification raised (or job started) to the last message
accepted, on the database's clock; CPU is the worker process's alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # for tests.push_receiver
from tests.push_receiver import Browser, self_signed_certificate

from _receiver import free_port, receiver, wait_for_port
from _support import cpu_seconds, create_database, database_url, drop_database, server

BATCH = 500
CLIENTS = 4
LATENCY_RATE, LATENCY_SECONDS = 200, 30
SERVICE_TOKEN = "bench-service-token-of-at-least-32-bytes"  # noqa: S105 (a bench fixture)
PAYLOAD = {"title": "Benchmark", "body": "A notification of ordinary size, with some text."}
WAYS = ("bulk", "sql", "http", "job", "latency", "naive")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--plain", action="store_true", help="plain HTTP/1.1 to the receiver")
    parser.add_argument("--skip", nargs="*", default=[], choices=WAYS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tls = None if args.plain else self_signed_certificate(Path(folder))
        if tls:  # trusted by the worker's libcurl and by requests in this process
            os.environ["CURL_CA_BUNDLE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(tls[0])
        with receiver(tls) as origin:
            Bench(origin, args.messages, args.url, skip=set(args.skip)).run()


class Bench:
    def __init__(self, origin: str, messages: int, url: str | None, *, skip: set[str]) -> None:
        from planner_jobs.push.keys import VapidKeys

        self.origin, self.messages, self.url_option, self.skip = origin, messages, url, skip
        self.browser = Browser("bench")  # one key pair for all: the crypto cost is the same
        self.keys = VapidKeys.generate()
        self.results: dict[str, tuple[int, float, float]] = {}  # messages, seconds, worker CPU

    def run(self) -> None:
        with server(self.url_option) as server_url, tempfile.TemporaryDirectory() as data_dir:
            name = create_database(server_url)
            try:
                self.url, self.data_dir = database_url(server_url, name), data_dir
                self.prepare()
                for way in WAYS:
                    if way not in self.skip:
                        getattr(self, way)()
                        self.reset()
                self.engine.dispose()
            finally:
                drop_database(server_url, name)
        self.report()

    # --- set-up ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        import sqlalchemy as sa

        from planner_jobs.db.engine import create_engine
        from planner_jobs.db.migrate import migrate

        self.sa = sa
        self.engine = create_engine(self.url)
        migrate(self.engine)
        with self.engine.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO users (email) SELECT 'u' || n || '@example.com'"
                    " FROM generate_series(1, :n) AS n"
                ),
                {"n": self.messages},
            )
            c.execute(
                sa.text(
                    "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)"
                    " SELECT id, :base || id, :p, :a FROM users"
                ),
                {"base": f"{self.origin}/push/", "p": self.browser.p256dh, "a": self.browser.auth},
            )
            self.users = [str(u) for u in c.scalars(sa.text("SELECT id FROM users ORDER BY id"))]
        host = self.origin.split("://")[1]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")},
            "PLANNER_DATABASE_URL": self.url,
            "PLANNER_DATA_DIR": self.data_dir,
            "PLANNER_PUSH_ALLOWED_HOSTS": host,
            "PLANNER_VAPID_PRIVATE_KEY": self.keys.private_raw,
            "PLANNER_SERVICE_TOKEN": SERVICE_TOKEN,
            "PLANNER_LOG_LEVEL": "WARNING",
        }

    def reset(self) -> None:
        with self.engine.begin() as c:
            c.execute(self.sa.text("TRUNCATE notifications, procrastinate_jobs CASCADE"))

    def delivered(self) -> int:
        with self.engine.connect() as c:
            return int(
                c.scalar(
                    self.sa.text("SELECT count(*) FROM push_deliveries WHERE status = 'delivered'")
                )
                or 0
            )

    def window(self, since: str = "min(n.created_at)") -> float:
        """Seconds from `since` (the first notification raised) to the last message accepted."""
        with self.engine.connect() as c:
            return float(
                c.scalar(
                    self.sa.text(
                        f"SELECT extract(epoch FROM max(d.delivered_at) - {since})"
                        " FROM push_deliveries d, notifications n"
                        " WHERE d.notification_id = n.id"
                    )
                )
            )

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "planner_jobs", *args]

    @contextmanager
    def worker(self) -> Iterator[Callable[[], float]]:
        """A running `planner-jobs worker --queue notifications`; yields its CPU seconds so far."""
        process = subprocess.Popen(
            self.command("worker", "--queue", "notifications", "--concurrency", "4"),
            env=self.env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self.polling():
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                sys.exit("the worker did not start")
            time.sleep(0.05)
        started = cpu_seconds(process.pid)
        try:
            yield lambda: cpu_seconds(process.pid) - started
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait()

    def polling(self) -> bool:
        with self.engine.connect() as c:
            return bool(
                c.scalar(
                    self.sa.text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = 'planner-jobs intake'"
                    )
                )
            )

    def wait_for(self, count: int, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while self.delivered() < count:
            if time.monotonic() > deadline:
                sys.exit(f"only {self.delivered()} of {count} messages were delivered")
            time.sleep(0.1)

    # --- the ways in --------------------------------------------------------------------------

    def bulk(self) -> None:
        from planner_jobs.db.notifications import enqueue
        from planner_jobs.domain.notifications import NewNotification

        for start in range(0, len(self.users), BATCH):
            with self.engine.begin() as c:
                enqueue(
                    c,
                    [
                        NewNotification(uuid.UUID(u), PAYLOAD)
                        for u in self.users[start : start + BATCH]
                    ],
                    source="bench",
                )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            self.command("worker", "--burst", "--queue", "notifications", "--concurrency", "4"),
            env=self.env,
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        # Raised before the worker started: timed from its first job.
        self.record("bulk (batches of 500), burst worker", self.first_job_window(), cpu)

    def sql(self) -> None:
        with self.worker() as cpu:
            chunks = [self.users[i::CLIENTS] for i in range(CLIENTS)]
            with multiprocessing.get_context("fork").Pool(CLIENTS) as pool:
                pool.starmap(notify_each, [(self.url, chunk) for chunk in chunks])
            self.wait_for(self.messages)
            used = cpu()
        self.record(f"planner_notify() one call each, {CLIENTS} clients", self.window(), used)

    def http(self) -> None:
        port = free_port()
        api = subprocess.Popen(
            self.command("api"), env={**self.env, "PLANNER_PORT": str(port)},
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port)
            with self.worker() as cpu:
                for start in range(0, len(self.users), BATCH):
                    items = [
                        {"userId": u, "payload": PAYLOAD} for u in self.users[start : start + BATCH]
                    ]
                    post(f"http://127.0.0.1:{port}/internal/notifications", items)
                self.wait_for(self.messages)
                used = cpu()
        finally:
            api.send_signal(signal.SIGTERM)
            api.wait()
        self.record("POST /internal/notifications, batches of 500", self.window(), used)

    def job(self) -> None:
        from planner_jobs.catalogue import build_job_app
        from planner_jobs.db.engine import libpq_url

        job_app = build_job_app(libpq_url(self.url), periodic=False)
        with job_app.open():
            task = job_app.tasks["notifications.send"]
            for start in range(0, len(self.users), BATCH):
                task.batch_defer(
                    *({"userId": u, "payload": PAYLOAD} for u in self.users[start : start + BATCH])
                )
        with self.worker() as cpu:
            self.wait_for(self.messages)
            used = cpu()
        self.record("one notifications.send job each", self.first_job_window(), used)

    def first_job_window(self) -> float:
        return self.window("(SELECT min(at) FROM procrastinate_events WHERE type = 'started')")

    def latency(self) -> None:
        offered = min(LATENCY_RATE * LATENCY_SECONDS, len(self.users))
        with self.worker():
            notify_paced(self.url, self.users[:offered], LATENCY_RATE)
            self.wait_for(offered)
        with self.engine.connect() as c:
            waits = sorted(
                float(w)
                for w in c.scalars(
                    self.sa.text(
                        "SELECT extract(epoch FROM d.delivered_at - n.created_at)"
                        " FROM push_deliveries d JOIN notifications n ON n.id = d.notification_id"
                    )
                )
            )
        self.latencies = (
            offered,
            statistics.median(waits),
            waits[int(len(waits) * 0.99) - 1],
            waits[-1],
        )

    def naive(self) -> None:
        from pywebpush import webpush

        info = {
            "endpoint": f"{self.origin}/push/naive",
            "keys": {"p256dh": self.browser.p256dh, "auth": self.browser.auth},
        }
        data = json.dumps(PAYLOAD)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        for _ in range(self.messages):
            webpush(
                info,
                data=data,
                vapid_private_key=self.keys.private_raw,
                vapid_claims={"sub": "mailto:bench@example.com"},
                ttl=86400,
            )
        wall = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        self.record("naive: pywebpush webpush() per message, no session", wall, cpu)

    # --- results ------------------------------------------------------------------------------

    def record(self, label: str, seconds: float, cpu: float) -> None:
        self.results[label] = (self.delivered() or self.messages, seconds, cpu)
        count = self.results[label][0]
        print(f"  {label}: {count:,} in {seconds:.2f} s", file=sys.stderr)

    def report(self) -> None:
        naive = next((v for k, v in self.results.items() if k.startswith("naive")), None)
        naive_rate = naive[0] / naive[1] if naive else None
        for label, (count, seconds, cpu) in self.results.items():
            rate = count / seconds
            ratio = f" ({rate / naive_rate:.1f}x naive)" if naive_rate else ""
            print(
                f"{label}: {count:,} messages in {seconds:.2f} s = {rate:,.0f} msg/s{ratio};"
                f" {cpu / count * 1e6:.0f} µs worker CPU/message"
            )
        if hasattr(self, "latencies"):
            offered, p50, p99, worst = self.latencies
            print(
                f"latency at {LATENCY_RATE}/s offered for {LATENCY_SECONDS} s ({offered:,}"
                f" messages), raised to accepted: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f}"
                f" ms, max {worst * 1000:.0f} ms"
            )


def notify_each(url: str, users: Sequence[str]) -> None:
    """A client process: one planner_notify() per user, each in its own transaction."""
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(url) as connection:
        for user in users:
            connection.execute("SELECT planner_notify(%s, %s)", (user, Jsonb(PAYLOAD)))
            connection.commit()


def notify_paced(url: str, users: Sequence[str], rate: float) -> None:
    """One planner_notify() per user, `rate` a second, each in its own transaction."""
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(url) as connection:
        started = time.monotonic()
        for n, user in enumerate(users):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            connection.execute("SELECT planner_notify(%s, %s)", (user, Jsonb(PAYLOAD)))
            connection.commit()


def post(url: str, items: list[dict[str, object]]) -> None:
    request = urllib.request.Request(  # noqa: S310 (our own API)
        url,
        data=json.dumps({"notifications": items}).encode(),
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        assert response.status == 202


if __name__ == "__main__":
    main()
