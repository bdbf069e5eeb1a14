"""Exports through the API, the worker and real storage (local files, and S3 on moto's server)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_jobs.api.app import create_app
from planner_jobs.jobs.exports import USER_SAFE_ERROR, expire_exports
from planner_jobs.runtime import Runtime
from planner_jobs.storage.s3 import S3Storage
from tests.data import add_plan, add_routine, add_subscription, add_task, add_user, utc
from tests.integration.conftest import bearer, work
from tests.s3_support import failing_proxy, moto_server

TRICKY = [
    'Commas, "quotes", and\nnew lines',
    '=HYPERLINK("http://evil.example")',
    "# [link](http://evil.example) <b>html</b>",
    "Ünïcødé 日本語 🧭",
]
SECRETS = ["RESET-TOKEN-7f3a", "P256DH-KEY-9c1e", "AUTH-KEY-5d2b", "OTHER-USER-MARKER"]
RETENTION = dt.timedelta(days=7)  # the default PLANNER_EXPORT_RETENTION_DAYS


def seed(runtime: Runtime) -> tuple[uuid.UUID, uuid.UUID]:
    """A user with one of everything (and tricky text), and another user who must not leak."""
    with runtime.engine.begin() as c:
        ada = add_user(
            c, created_at=utc("2026-03-01T08:00"), timezone="Europe/Paris", email="ada@example.com"
        )
        bob = add_user(c, created_at=utc("2026-03-01T08:00"), email="bob@example.com")
        c.execute(
            sa.text(
                "UPDATE users SET password_reset_token = :t, password_reset_expires = now()"
                " + interval '1 hour' WHERE id = :u"
            ),
            {"t": SECRETS[0], "u": ada},
        )
        add_subscription(
            c, ada, "https://fcm.googleapis.com/fcm/send/x", p256dh=SECRETS[1], auth=SECRETS[2]
        )
        goal = c.execute(
            sa.text(
                "INSERT INTO goals (user_id, title, description) VALUES (:u, :t, :d) RETURNING id"
            ),
            {"u": ada, "t": TRICKY[2], "d": TRICKY[0]},
        ).scalar_one()
        plan = add_plan(c, ada, "2026-03-07")
        for n, title in enumerate(TRICKY):
            add_task(
                c,
                ada,
                plan if n % 2 else None,
                title=title,
                notes=TRICKY[n - 1],
                goal_id=goal,
                completed_at=utc("2026-03-07T10:00") if n % 2 else None,
            )
        add_routine(c, ada, [True, None], name=TRICKY[3])
        c.execute(sa.text("SELECT planner_history_months(ARRAY[DATE '2026-03-06'])"))
        c.execute(
            sa.text(
                "INSERT INTO performance_history"
                " (user_id, day, completed_tasks, total_tasks, score, threshold, streak_effect)"
                " VALUES (:u, '2026-03-06', 2, 3, 66.67, 75, 'day_off')"
            ),
            {"u": ada},
        )
        c.execute(
            sa.text(
                "INSERT INTO streaks (user_id, current, longest, last_activity_date, freezes)"
                " VALUES (:u, 4, 6, '2026-03-05', 2)"
            ),
            {"u": ada},
        )
        c.execute(
            sa.text("INSERT INTO activity_logs (user_id, kind, message) VALUES (:u, 'note', :m)"),
            {"u": ada, "m": TRICKY[1]},
        )
        add_task(c, bob, None, title=SECRETS[3])
        c.execute(
            sa.text("INSERT INTO activity_logs (user_id, kind, message) VALUES (:u, 'note', :m)"),
            {"u": bob, "m": SECRETS[3]},
        )
    return ada, bob


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def request(client: TestClient, runtime: Runtime, user: uuid.UUID, fmt: str):  # type: ignore[no-untyped-def]
    return client.post("/api/exports", json={"format": fmt}, headers=bearer(runtime, user))


def download(client: TestClient, url: str) -> bytes:
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment;")
    return response.content


def text_of(fmt: str, content: bytes) -> str:
    if fmt == "csv":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "\n".join(archive.read(name).decode("utf-8") for name in archive.namelist())
    return content.decode("utf-8")


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown"])
def test_an_export_is_built_stored_and_downloaded_through_a_signed_link(
    client: TestClient, runtime: Runtime, fmt: str
) -> None:
    ada, _ = seed(runtime)

    created = request(client, runtime, ada, fmt)
    assert created.status_code == 202
    job = created.json()
    assert (job["status"], job["format"], job["downloadUrl"]) == ("pending", fmt, None)

    work(runtime, "exports")

    done = client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, ada)).json()
    assert done["status"] == "complete"
    assert done["downloadUrl"].startswith(
        f"{runtime.settings.public_url}/api/exports/{job['id']}/download?"
    )
    completed = dt.datetime.fromisoformat(done["completedAt"])
    assert dt.datetime.fromisoformat(done["expiresAt"]) - completed == dt.timedelta(days=7)
    content = download(client, done["downloadUrl"])
    text = text_of(fmt, content)
    for secret in SECRETS:
        assert secret not in text
    if fmt == "json":
        document = json.loads(content)
        assert sorted(t["title"] for t in document["tasks"]) == sorted(TRICKY)
        assert document["user"]["email"] == "ada@example.com"
        assert document["performanceHistory"][0]["score"] == 66.67
        assert document["performanceHistory"][0]["streakEffect"] == "day_off"
        assert document["streak"] == {
            "current": 4,
            "longest": 6,
            "lastActivityDate": "2026-03-05",
            "freezes": 2,
        }
        # Instants in the user's zone (Europe/Paris) with the offset of the day.
        assert document["user"]["createdAt"] == "2026-03-01T09:00:00+01:00"
        completed = {t["completedAt"] for t in document["tasks"]} - {None}
        assert completed == {"2026-03-07T11:00:00+01:00"}
        assert document["exportedAt"].endswith(("+01:00", "+02:00"))
    elif fmt == "csv":
        assert '"Commas, ""quotes"", and\nnew lines"' in text
        assert "'=HYPERLINK" in text
        assert "2026-03-06,2,3,66.67,day_off" in text
        assert "4,6,2026-03-05,2" in text
    else:
        assert "| 2026-03-06 | 2 | 3 | 66.67% | kept (day off) |" in text
        assert "streak freezes held: 2." in text
        assert "Ünïcødé 日本語 🧭" in text
        assert "<b>" not in text
    with runtime.engine.connect() as c:
        ready = c.execute(
            sa.text("SELECT user_id, body::jsonb AS payload, source FROM notifications")
        ).one()
    assert (ready.user_id, ready.source) == (ada, "export")
    assert ready.payload["title"] == "Your export is ready"


def test_double_clicks_conflicts_and_the_daily_quota(client: TestClient, runtime: Runtime) -> None:
    ada, _ = seed(runtime)

    first = request(client, runtime, ada, "json")
    again = request(client, runtime, ada, "json")
    other = request(client, runtime, ada, "csv")

    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["activeExport"]["id"] == first.json()["id"]
    for _ in range(4):
        work(runtime, "exports")
        assert request(client, runtime, ada, "markdown").status_code in (202, 409)
    work(runtime, "exports")
    with runtime.engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM export_jobs")) == 5
    limited = request(client, runtime, ada, "json")
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= 24 * 3600
    listed = client.get("/api/exports", headers=bearer(runtime, ada)).json()
    assert len(listed) == 5
    assert [j["createdAt"] for j in listed] == sorted(
        (j["createdAt"] for j in listed), reverse=True
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [({"format": "pdf"}, "format"), ({}, "format"), ({"format": None}, "format")],
)
def test_a_bad_body_is_422_naming_the_field(
    client: TestClient, runtime: Runtime, body: dict[str, object], field: str
) -> None:
    ada, _ = seed(runtime)

    response = client.post("/api/exports", json=body, headers=bearer(runtime, ada))

    assert response.status_code == 422
    assert response.json()["message"].startswith(f"{field}:")


def test_another_users_export_is_404_and_tokens_are_required(
    client: TestClient, runtime: Runtime
) -> None:
    ada, bob = seed(runtime)
    job = request(client, runtime, ada, "json").json()

    assert client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, bob)).status_code == 404
    assert (
        client.get(f"/api/exports/{uuid.uuid4()}", headers=bearer(runtime, ada)).status_code == 404
    )
    assert client.get("/api/exports", headers=bearer(runtime, bob)).json() == []
    assert client.get(f"/api/exports/{job['id']}").status_code == 401
    assert client.post("/api/exports", json={"format": "json"}).status_code == 401
    assert client.get("/api/exports/not-a-uuid", headers=bearer(runtime, ada)).status_code == 422


def test_forged_expired_or_borrowed_links_are_403(client: TestClient, runtime: Runtime) -> None:
    ada, _ = seed(runtime)
    first = request(client, runtime, ada, "json").json()
    work(runtime, "exports")
    url = client.get(f"/api/exports/{first['id']}", headers=bearer(runtime, ada)).json()[
        "downloadUrl"
    ]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = parts.path

    assert client.get(f"{path}?expires={query['expires']}&signature={'0' * 64}").status_code == 403
    assert (
        client.get(
            f"{path}?expires={int(query['expires']) + 60}&signature={query['signature']}"
        ).status_code
        == 403
    )
    assert client.get(f"{path}?expires=1&signature={query['signature']}").status_code == 403
    assert client.get(path).status_code == 403
    other = str(uuid.uuid4())
    assert client.get(f"/api/exports/{other}/download?{parts.query}").status_code == 403
    assert client.get(f"{path}?{parts.query}").status_code == 200


@given(
    expires=st.one_of(st.text(), st.integers(min_value=-(10**40), max_value=10**4000).map(str)),
    signature=st.one_of(st.text(), st.text("0123456789abcdefABCDEF", min_size=64, max_size=64)),
    # What a client can put in a URL: any character but controls and spaces.
    raw=st.text(st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"))),
)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_malformed_link_is_403_never_a_server_error(
    client: TestClient, expires: str, signature: str, raw: str
) -> None:
    path = f"/api/exports/{uuid.UUID(int=7)}/download"

    assert client.get(path, params={"expires": expires, "signature": signature}).status_code == 403
    assert client.get(f"{path}?{raw}").status_code == 403
    for malformed in ("²", "1" * 5000, "-1", " 1", "1e9", "0x10"):
        assert client.get(path, params={"expires": malformed, "signature": "a"}).status_code == 403
    assert client.get(path, params={"expires": "9" * 12, "signature": "é" * 64}).status_code == 403


def test_retention_deletes_the_file_and_expires_the_job(
    client: TestClient, runtime: Runtime
) -> None:
    ada, _ = seed(runtime)
    job = request(client, runtime, ada, "csv").json()
    work(runtime, "exports")
    url = client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, ada)).json()[
        "downloadUrl"
    ]
    files = list((runtime.settings.data_dir / "exports").rglob("*.zip"))
    assert len(files) == 1

    def expire(days: int) -> int:
        now = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        return expire_exports(runtime.engine, runtime.storage, now=now, retention=RETENTION).expired

    assert expire(6) == 0
    assert expire(8) == 1

    assert not files[0].exists()
    after = client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, ada)).json()
    assert (after["status"], after["downloadUrl"]) == ("expired", None)
    parts = urlsplit(url)
    assert client.get(f"{parts.path}?{parts.query}").status_code == 404


def test_a_storage_that_refuses_fails_the_export_with_a_safe_message(
    client: TestClient, runtime: Runtime
) -> None:
    ada, _ = seed(runtime)
    (runtime.settings.data_dir / "exports").mkdir(parents=True)
    (runtime.settings.data_dir / "exports" / str(ada)).write_text("a file where a folder should be")
    job = request(client, runtime, ada, "json").json()

    work(runtime, "exports")

    failed = client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, ada)).json()
    assert (failed["status"], failed["error"]) == ("failed", USER_SAFE_ERROR)
    assert failed["downloadUrl"] is None
    assert list((runtime.settings.data_dir / "staging").iterdir()) == []


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="exports")
        yield endpoint


def big_user(runtime: Runtime, tasks: int) -> uuid.UUID:
    with runtime.engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T08:00"))
        c.execute(
            sa.text(
                "INSERT INTO tasks (user_id, title, notes) SELECT :u, 'task ' || n,"
                " repeat(md5(n::text), 8) FROM generate_series(1, :n) AS n"
            ),
            {"u": user, "n": tasks},
        )
    return user


def test_s3_gets_a_multipart_upload_and_hands_out_sigv4_links(runtime: Runtime, s3: str) -> None:
    storage = S3Storage.connect(
        bucket="exports", prefix="planner", endpoint_url=s3, multipart_threshold=5 * 1024 * 1024
    )
    runtime = dataclasses.replace(runtime, storage=storage)
    user = big_user(runtime, 30_000)  # about 12 MB of JSON: three parts
    with TestClient(create_app(runtime)) as client:
        job = request(client, runtime, user, "json").json()
        work(runtime, "exports")
        done = client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, user)).json()

    assert done["status"] == "complete"
    url = urlsplit(done["downloadUrl"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.netloc == urlsplit(s3).netloc
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == str(runtime.settings.export_url_ttl)
    assert query["response-content-disposition"].startswith('attachment; filename="planner-export-')
    client = boto3.client("s3", endpoint_url=s3)
    [stored] = client.list_objects_v2(Bucket="exports")["Contents"]
    assert stored["Key"] == f"planner/{user}/{job['id']}.json"
    assert stored["Size"] > 10 * 1024 * 1024
    assert stored["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag
    body = client.get_object(Bucket="exports", Key=stored["Key"])["Body"].read()
    assert len(json.loads(body)["tasks"]) == 30_000


def test_an_upload_failing_midway_is_retried_and_leaves_no_partial_object(
    runtime: Runtime, s3: str
) -> None:
    outage = {"on": True}

    def rule(method: str, path: str) -> int | None:
        # Part 2 fails for as long as the outage lasts (botocore's own retries included).
        if method == "PUT" and "partNumber=2" in path and outage["on"]:
            return 500
        return None

    with failing_proxy(s3, rule) as proxy:
        storage = S3Storage.connect(
            bucket="exports", endpoint_url=proxy, multipart_threshold=5 * 1024 * 1024
        )
        runtime = dataclasses.replace(runtime, storage=storage)
        user = big_user(runtime, 30_000)
        with TestClient(create_app(runtime)) as client:
            job = request(client, runtime, user, "json").json()
            work(runtime, "exports")  # the upload gives up and is aborted; the job backs off
            outage["on"] = False
            client_s3 = boto3.client("s3", endpoint_url=s3)
            assert "Contents" not in client_s3.list_objects_v2(Bucket="exports")
            assert "Uploads" not in client_s3.list_multipart_uploads(Bucket="exports")
            with runtime.engine.begin() as c:
                assert c.scalar(sa.text("SELECT status FROM export_jobs")) == "processing"
                c.execute(
                    sa.text(
                        "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'"
                    )
                )
            work(runtime, "exports")
            done = client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, user)).json()

    assert done["status"] == "complete"
    assert len(client_s3.list_objects_v2(Bucket="exports")["Contents"]) == 1


def test_a_user_in_an_unknown_zone_gets_utc_instants(client: TestClient, runtime: Runtime) -> None:
    with runtime.engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-01T08:00"), timezone="Mars/Olympus_Mons")
    job = request(client, runtime, user, "json").json()
    work(runtime, "exports")
    done = client.get(f"/api/exports/{job['id']}", headers=bearer(runtime, user)).json()

    document = json.loads(download(client, done["downloadUrl"]))

    assert document["user"]["createdAt"] == "2026-03-01T08:00:00+00:00"
    assert document["user"]["timezone"] == "Mars/Olympus_Mons"


def cut_off_completions(runtime: Runtime, times: int) -> None:
    """The database kills the connection that marks an export complete, the first `times`
    times (a sequence counts them: it is not rolled back with the killed transaction)."""
    with runtime.engine.begin() as c:
        c.execute(sa.text("CREATE SEQUENCE completions_seen"))
        c.execute(
            sa.text(
                f"""
                CREATE FUNCTION cut_off_completion() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.status = 'complete' AND nextval('completions_seen') <= {times} THEN
                        PERFORM pg_terminate_backend(pg_backend_pid());
                    END IF;
                    RETURN NEW;
                END $$
                """
            )
        )
        c.execute(
            sa.text(
                "CREATE TRIGGER cut_off BEFORE UPDATE ON export_jobs"
                " FOR EACH ROW EXECUTE FUNCTION cut_off_completion()"
            )
        )


def retry_now(runtime: Runtime) -> None:
    with runtime.engine.begin() as c:
        c.execute(
            sa.text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
        )


def stored_objects(runtime: Runtime, s3: str | None) -> list[str]:
    if s3 is not None:
        listing = boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket="exports")
        return [item["Key"] for item in listing.get("Contents", [])]
    root = runtime.settings.data_dir / "exports"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(params=["local", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def any_storage(runtime: Runtime, storage_kind: str, request: pytest.FixtureRequest) -> Runtime:
    if storage_kind == "local":
        return runtime
    endpoint = request.getfixturevalue("s3")
    storage = S3Storage.connect(bucket="exports", endpoint_url=endpoint)
    return dataclasses.replace(runtime, storage=storage)


def test_an_export_cut_off_after_its_upload_stores_one_file_once_retried(
    any_storage: Runtime, storage_kind: str, request: pytest.FixtureRequest
) -> None:
    runtime = any_storage
    s3 = request.getfixturevalue("s3") if storage_kind == "s3" else None
    ada, _ = seed(runtime)
    cut_off_completions(runtime, times=1)
    with TestClient(create_app(runtime)) as client:
        job = request_export_as(client, runtime, ada, "json")

        work(runtime, "exports")  # uploads, then loses its connection marking it complete
        assert export_status(runtime) == "processing"
        retry_now(runtime)
        work(runtime, "exports")
        done = client.get(f"/api/exports/{job}", headers=bearer(runtime, ada)).json()

    assert done["status"] == "complete"
    assert stored_objects(runtime, s3) == [f"{ada}/{job}.json"]
    assert list((runtime.settings.data_dir / "staging").iterdir()) == []


def test_an_export_that_gives_up_deletes_what_its_attempts_stored(
    any_storage: Runtime, storage_kind: str, request: pytest.FixtureRequest
) -> None:
    runtime = any_storage
    s3 = request.getfixturevalue("s3") if storage_kind == "s3" else None
    ada, _ = seed(runtime)
    cut_off_completions(runtime, times=1000)  # every attempt uploads, then is cut off
    with TestClient(create_app(runtime)) as client:
        job = request_export_as(client, runtime, ada, "csv")
        for _ in range(10):
            work(runtime, "exports")
            if export_status(runtime) == "failed":
                break
            retry_now(runtime)

    assert export_status(runtime) == "failed"
    assert stored_objects(runtime, s3) == []
    with runtime.engine.connect() as c:
        assert (
            c.scalar(sa.text("SELECT storage_key FROM export_jobs WHERE id = :i"), {"i": job})
            is None
        )


def test_retention_deletes_a_file_a_failed_export_left(
    any_storage: Runtime, storage_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A failed export whose file could not be deleted when it failed (storage down)."""
    runtime = any_storage
    s3 = request.getfixturevalue("s3") if storage_kind == "s3" else None
    ada, _ = seed(runtime)
    key = f"{ada}/left-behind.json"
    leftover = tmp_path / "leftover.json"
    leftover.write_text("{}")
    runtime.storage.put(key, leftover, media_type="application/json")
    with runtime.engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO export_jobs (user_id, format, status, storage_key)"
                " VALUES (:u, 'json', 'failed', :k)"
            ),
            {"u": ada, "k": key},
        )
    assert stored_objects(runtime, s3) == [key]

    summary = expire_exports(
        runtime.engine, runtime.storage, now=dt.datetime.now(dt.UTC), retention=RETENTION
    )

    assert summary.expired == 0
    assert stored_objects(runtime, s3) == []
    with runtime.engine.connect() as c:
        assert c.execute(sa.text("SELECT status, storage_key FROM export_jobs")).one() == (
            "failed",
            None,
        )


def request_export_as(client: TestClient, runtime: Runtime, user: uuid.UUID, fmt: str) -> str:
    response = request(client, runtime, user, fmt)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def export_status(runtime: Runtime) -> str:
    with runtime.engine.connect() as c:
        return str(c.scalar(sa.text("SELECT status FROM export_jobs")))
