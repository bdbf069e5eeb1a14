"""Benchmark: Web Push delivery from one worker process vs pywebpush one message at a time.

    python bench/push.py [--messages 10000] [--url postgresql://...] [--plain]

A receiver runs in its own process (`_receiver`: granian, answers 201 to every push) over HTTPS
offering HTTP/2 and HTTP/1.1, as push services do (endpoints must be https unless a host is
allowed explicitly), with a self-signed certificate that the worker and pywebpush are told to
trust; with --plain over plain HTTP/1.1. MESSAGES users each get one subscription on it. Three
runs, each timed on the worker side:
  1. bulk: the notifications queued in batches of 500 (as reminders are), delivered by one
     `planner-jobs worker --burst --queue notifications` process;
  2. per-notification: one `notifications.send` job each (the CLI/API path), same worker;
  3. naive: pywebpush's `webpush()` called once per message, no shared HTTP session.
Prints messages/s and CPU time per message of the sending process for each.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # for tests.push_receiver
from tests.push_receiver import Browser, self_signed_certificate

from _receiver import receiver
from _support import create_database, database_url, drop_database, server

BATCH = 500
NAIVE = "naive: pywebpush webpush() per message, no session"


def timed_child(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a child process run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--plain", action="store_true", help="plain HTTP/1.1 to the receiver")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tls = None if args.plain else self_signed_certificate(Path(folder))
        if tls:  # trusted by the worker's libcurl and by requests in this process
            os.environ["CURL_CA_BUNDLE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(tls[0])
        with receiver(tls) as origin:
            results = measure(origin, args.messages, args.url)
    naive_rate = results[NAIVE][0] / results[NAIVE][1]
    for label, (count, window, process_wall, cpu) in results.items():
        rate = count / window
        print(
            f"{label}: {count:,} messages; sending {window:.2f} s = {rate:,.0f} msg/s"
            f" ({rate / naive_rate:.1f}x naive); whole process {process_wall:.2f} s"
            f" = {count / process_wall:,.0f} msg/s; {cpu / count * 1e6:.0f} µs CPU/message"
        )


def measure(
    origin: str, messages: int, url_option: str | None
) -> dict[str, tuple[int, float, float, float]]:
    """(messages, sending seconds, process seconds, CPU seconds) for each way of sending."""
    import sqlalchemy as sa
    from pywebpush import webpush

    from planner_jobs.db.engine import create_engine, libpq_url
    from planner_jobs.db.migrate import migrate
    from planner_jobs.jobs.app import build_job_app
    from planner_jobs.jobs.notifications import Notification, queue_many
    from planner_jobs.push.keys import VapidKeys

    host = origin.split("://")[1]
    browser = Browser("bench")  # one key pair for every subscription: the crypto cost is the same
    keys = VapidKeys.generate()
    payload = {"title": "Benchmark", "body": "A notification of ordinary size, with some text."}
    results: dict[str, tuple[int, float, float, float]] = {}
    with server(url_option) as server_url, tempfile.TemporaryDirectory() as data_dir:
        name = create_database(server_url)
        url = database_url(server_url, name)
        engine = create_engine(url)
        migrate(engine)
        with engine.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO users (email) SELECT 'u' || n || '@example.com'"
                    " FROM generate_series(1, :n) AS n"
                ),
                {"n": messages},
            )
            c.execute(
                sa.text(
                    "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)"
                    " SELECT id, :base || id, :p, :a FROM users"
                ),
                {"base": f"{origin}/push/", "p": browser.p256dh, "a": browser.auth},
            )
            users = list(c.scalars(sa.text("SELECT id FROM users")))
        job_app = build_job_app(libpq_url(url), periodic=False)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")},
            "PLANNER_DATABASE_URL": url,
            "PLANNER_DATA_DIR": data_dir,
            "PLANNER_PUSH_ALLOWED_HOSTS": host,
            "PLANNER_VAPID_PRIVATE_KEY": keys.private_raw,
            "PLANNER_LOG_LEVEL": "WARNING",
        }
        worker = [
            sys.executable,
            "-m",
            "planner_jobs",
            "worker",
            "--burst",
            "--queue",
            "notifications",
            "--concurrency",
            "4",
        ]

        def delivered() -> tuple[int, float]:
            """Messages delivered, and seconds from the first job's start to the last answer."""
            with engine.connect() as c:
                count, window = c.execute(
                    sa.text(
                        "SELECT count(*), extract(epoch FROM max(delivered_at) - (SELECT min(at)"
                        " FROM procrastinate_events WHERE type = 'started'))"
                        " FROM push_deliveries WHERE status = 'delivered'"
                    )
                ).one()
            return int(count), float(window)

        def reset() -> None:
            with engine.begin() as c:
                c.execute(sa.text("TRUNCATE push_deliveries, procrastinate_jobs CASCADE"))

        for start in range(0, len(users), BATCH):
            with engine.begin() as c:
                queue_many(
                    c,
                    job_app,
                    [Notification(uuid.uuid4(), u, payload) for u in users[start : start + BATCH]],
                )
        wall, cpu = timed_child(worker, env)
        results["bulk (batches of 500), 1 worker process"] = (*delivered(), wall, cpu)
        reset()

        job_app.open()
        task = job_app.tasks["notifications.send"]
        for start in range(0, len(users), BATCH):
            task.batch_defer(
                *({"userId": str(u), "payload": payload} for u in users[start : start + BATCH])
            )
        job_app.close()
        wall, cpu = timed_child(worker, env)
        results["one notifications.send job each, 1 worker process"] = (*delivered(), wall, cpu)
        engine.dispose()
        drop_database(server_url, name)

    naive_count = messages
    info = {
        "endpoint": f"{origin}/push/naive",
        "keys": {"p256dh": browser.p256dh, "auth": browser.auth},
    }
    import json

    data = json.dumps(payload)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for _ in range(naive_count):
        webpush(
            info,
            data=data,
            vapid_private_key=keys.private_raw,
            vapid_claims={"sub": "mailto:bench@example.com"},
            ttl=86400,
        )
    wall = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    results[NAIVE] = (naive_count, wall, wall, cpu)
    return results


if __name__ == "__main__":
    main()
