"""`/admin`: the operators' dashboard, server-rendered from the inspection room's views.

Pages: overview, jobs (filters, paging), a job (timeline, failures, retry and cancel), schedule,
exports, push deliveries. Everything it shows is served by this app (no asset from elsewhere).
Access: HTTP Basic, user `admin`, password `PLANNER_ADMIN_PASSWORD`; with no password the
dashboard is off (404), except in development on a loopback address, and then only for requests
addressed to a loopback name (a page elsewhere that rebinds its own name to 127.0.0.1 sends its
name as `Host` and is refused).

Its POST actions are refused unless they come from its own pages: each carries a CSRF token
that is the server's HMAC of the browser's session cookie (a cookie planted by a sibling
subdomain or on plain HTTP has no token the server signed), and a request whose `Origin` is
another site's, or that the browser marks `Sec-Fetch-Site: cross-site` or `same-site`, is
refused whatever it carries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.templating import Jinja2Templates

from planner_jobs import __version__, catalogue
from planner_jobs.api.deps import RuntimeDep
from planner_jobs.engine import actions, pauses
from planner_jobs.engine.queues import QUEUES, STATUSES, known_queue
from planner_jobs.engine.views import JobFilter
from planner_jobs.errors import UsageError
from planner_jobs.inspection import views
from planner_jobs.inspection.text import ago, duration
from planner_jobs.settings import Settings

SESSION_COOKIE = "planner_admin_session"
FLASH_COOKIE = "planner_admin_done"
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

_basic = HTTPBasic(auto_error=False, realm="planner-jobs")


def admin_access(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> None:
    """The operator may see the dashboard (401 asks the browser for the password)."""
    settings = runtime.settings
    password = settings.admin_password
    if password is None:
        if not (settings.env == "development" and _loopback(settings.host)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
        if not _loopback(_host_name(request.headers.get("host", ""))):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "without PLANNER_ADMIN_PASSWORD the dashboard answers only requests addressed"
                " to localhost, 127.0.0.1 or [::1]",
            )
        request.state.operator = True
        return
    given = credentials.password.encode() if credentials is not None else b""
    user = credentials.username.encode() if credentials is not None else b""
    # Both compared in constant time, always.
    good = hmac.compare_digest(user, b"admin") & hmac.compare_digest(
        given, password.get_secret_value().encode()
    )
    if credentials is None or not good:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the dashboard needs the admin password",
            headers={"WWW-Authenticate": 'Basic realm="planner-jobs"'},
        )
    request.state.operator = True


def closed_because(settings: Settings) -> str | None:
    """Why the dashboard answers 404 with these settings (None: it is open), for the log."""
    if settings.admin_password is not None:
        return None
    if settings.env != "development":
        return "the dashboard (/admin) is off: set PLANNER_ADMIN_PASSWORD (32 bytes or more)"
    if not _loopback(settings.host):
        return (
            f"the dashboard (/admin) is off: the API listens on {settings.host}, and without"
            " PLANNER_ADMIN_PASSWORD it opens only on a loopback address (PLANNER_HOST=127.0.0.1)"
        )
    return None


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always this machine
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """The name of a `Host` header (`[::1]:8000` -> `::1`), lower case; "" when malformed."""
    try:
        return (urlsplit("//" + host).hostname or "").lower()
    except ValueError:
        return ""


router = APIRouter(prefix="/admin", dependencies=[Depends(admin_access)], include_in_schema=False)


def _csrf_token(runtime: RuntimeDep, session: str) -> str:
    """The token the pages of `session` carry: the server's HMAC of it, under a key of its
    own derived from the signing secret (so no other use of that secret yields it)."""
    key = hmac.new(
        runtime.settings.signing_secret.get_secret_value().encode(),
        b"planner-jobs admin csrf",
        hashlib.sha256,
    ).digest()
    return hmac.new(key, session.encode(), hashlib.sha256).hexdigest()


# The pages' own script (the Overview's refresh) and styles; nothing from elsewhere, no inline
# script.
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
)


def _page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    runtime = request.app.state.runtime
    session = request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(32)
    # What the last action did, shown once: the cookie is read and cleared by this page.
    flash = request.cookies.get(FLASH_COOKIE)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "version": __version__,
            "csrf": _csrf_token(runtime, session),
            "ago": ago,
            "duration": duration,
            "flash": flash,
            **context,
        },
        status_code=status_code,
    )
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/admin")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.set_cookie(
        SESSION_COOKIE,
        session,
        httponly=True,
        samesite="strict",
        path="/admin",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("", response_class=HTMLResponse)
def overview(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    stalled_after = runtime.settings.stalled_after
    with runtime.engine.connect() as connection:
        seen = views.status(connection, stalled_after=stalled_after)
        minutes = views.jobs_per_minute(connection)
    peak = max((m.succeeded + m.failed for m in minutes), default=0) or 1
    return _page(request, "overview.html", s=seen, now=seen.now, minutes=minutes, peak=peak)


def _selection(
    queue: str | None, task: str | None, job_status: str | None, user: str | None
) -> JobFilter:
    """The Jobs page's filters, each checked: a bad one is a page saying which (400)."""
    try:
        if queue:
            known_queue(queue)
        if task:
            catalogue.known_task(task)
    except UsageError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    if job_status and job_status not in STATUSES:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"there is no status {job_status!r}: the statuses are {', '.join(STATUSES)}",
        )
    try:
        who = uuid.UUID(user) if user else None
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"user: {user!r} is not a user id (a UUID)"
        ) from None
    return JobFilter(queue=queue or None, task=task or None, status=job_status or None, user=who)


def _query(selection: JobFilter, **more: object) -> str:
    fields = {
        "queue": selection.queue,
        "task": selection.task,
        "status": selection.status,
        "user": selection.user,
        **more,
    }
    return urlencode({k: str(v) for k, v in fields.items() if v})


Filter = Annotated[str | None, Query()]


@router.get("/jobs", response_class=HTMLResponse)
def job_list(
    request: Request,
    runtime: RuntimeDep,
    queue: Filter = None,
    task: Filter = None,
    job_status: Annotated[str | None, Query(alias="status")] = None,
    user: Filter = None,
    before: Annotated[int | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> HTMLResponse:
    selection = _selection(queue, task, job_status, user)
    with runtime.engine.connect() as connection:
        found = views.jobs(connection, before=before, limit=limit, **dataclasses.asdict(selection))
        now = views.database_now(connection)
    more = f"?{_query(selection, before=found[-1].id)}" if len(found) == limit else None
    return _page(
        request,
        "jobs.html",
        jobs=found,
        now=now,
        filters=selection,
        query=_query(selection),
        more=more,
        queues=QUEUES,
        tasks=catalogue.TASK_NAMES,
        statuses=STATUSES,
    )


@router.get("/jobs/all/{action}", response_class=HTMLResponse)
def confirm_all(
    request: Request,
    runtime: RuntimeDep,
    action: str,
    queue: Filter = None,
    task: Filter = None,
    job_status: Annotated[str | None, Query(alias="status")] = None,
    user: Filter = None,
) -> HTMLResponse:
    """What "Retry all" or "Cancel all" would do, to confirm: how many jobs."""
    if action not in ("retry", "cancel"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no action {action!r}")
    selection = _selection(queue, task, job_status, user)
    with runtime.engine.connect() as connection:
        count = actions.count_all(
            connection, selection, action, stalled_after=runtime.settings.stalled_after
        )
    return _page(
        request,
        "confirm.html",
        action=action,
        count=count,
        filters=selection,
        query=_query(selection),
    )


@router.post("/jobs/all/{action}")
async def act_on_all(request: Request, runtime: RuntimeDep, action: str) -> Response:
    if action not in ("retry", "cancel"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no action {action!r}")
    fields = await _checked_form(request)
    selection = _selection(
        fields.get("queue"), fields.get("task"), fields.get("status"), fields.get("user")
    )
    with runtime.engine.begin() as connection:
        if action == "retry":
            done = actions.retry_all(
                connection, selection, stalled_after=runtime.settings.stalled_after
            ).line()
        else:
            done = actions.cancel_all(connection, selection).line()
    return _done(f"/admin/jobs?{_query(selection)}", done)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, runtime: RuntimeDep, job_id: int) -> HTMLResponse:
    with runtime.engine.connect() as connection:
        detail = views.job(connection, job_id, stalled_after=runtime.settings.stalled_after)
        now = views.database_now(connection)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no job {job_id}")
    return _page(request, "job.html", d=detail, now=now)


def _done(location: str, done: str) -> Response:
    """Back to the page acted on, which shows what was done once (a cookie it clears)."""
    response = RedirectResponse(location, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        FLASH_COOKIE, done[:1000], max_age=60, httponly=True, samesite="strict", path="/admin"
    )
    return response


async def _checked_form(request: Request) -> dict[str, str]:
    """The POSTed form, refused (403) unless it comes from one of our pages: not from another
    site (by `Sec-Fetch-Site` and `Origin`), and carrying the token signed for its session."""
    if request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a request from another site")
    origin = request.headers.get("origin")
    if origin is not None and _netloc(origin) != request.headers.get("host", "").lower():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a request from another origin")
    fields = {
        k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
    }
    session = request.cookies.get(SESSION_COOKIE, "")
    expected = _csrf_token(request.app.state.runtime, session)
    if not session or not hmac.compare_digest(fields.get("csrf", "").encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token does not match")
    return fields


def _netloc(origin: str) -> str:
    """`https://Jobs.example:8443` -> `jobs.example:8443`; "" for `null` or a malformed one
    (which then never matches a Host)."""
    try:
        return urlsplit(origin).netloc.lower()
    except ValueError:
        return ""


@router.post("/jobs/{job_id}/{action}")
async def act(request: Request, runtime: RuntimeDep, job_id: int, action: str) -> Response:
    if action not in ("retry", "cancel"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such action")
    await _checked_form(request)
    try:
        with runtime.engine.begin() as connection:
            if action == "retry":
                done = actions.retry(
                    connection, job_id, stalled_after=runtime.settings.stalled_after
                )
            else:
                done = actions.cancel(connection, job_id)
    except actions.JobActionRefused as exc:
        done = f"refused: {exc}"
    return _done(f"/admin/jobs/{job_id}", done)


@router.post("/queues/{queue}/{action}")
async def pause_or_resume(
    request: Request, runtime: RuntimeDep, queue: str, action: str
) -> Response:
    if action not in ("pause", "resume") or queue not in QUEUES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no queue {queue!r} to {action}")
    await _checked_form(request)
    with runtime.engine.begin() as connection:
        done = (pauses.pause if action == "pause" else pauses.resume)(connection, queue)
    return _done("/admin", done)


@router.post("/schedule/{task}/run")
async def run_now(request: Request, runtime: RuntimeDep, task: str) -> Response:
    try:
        spec = catalogue.periodic_named(task)
    except UsageError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    await _checked_form(request)
    with runtime.engine.begin() as connection:
        done = catalogue.run_now(connection, spec)
    return _done("/admin/schedule", done)


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    with runtime.engine.connect() as connection:
        now = views.database_now(connection)
        seen = views.workers(connection, stalled_after=runtime.settings.stalled_after)
    return _page(request, "workers.html", workers=seen, now=now)


@router.get("/static/overview.js")
def overview_script() -> Response:
    return FileResponse(
        Path(__file__).parent / "static" / "overview.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def error_page(
    request: Request, status_code: int, message: str, headers: Mapping[str, str] | None
) -> Response:
    """A refused or failed page or action of the dashboard, as a page saying why."""
    response = TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {
            "version": __version__,
            "status_code": status_code,
            "message": message,
            # The dashboard's pages are named only to whom may see them.
            "nav": getattr(request.state, "operator", False),
        },
        status_code=status_code,
        headers=headers,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    return response


@router.get("/schedule", response_class=HTMLResponse)
def schedule_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    with runtime.engine.connect() as connection:
        now = views.database_now(connection)
        entries = views.schedule(connection, now=now)
    return _page(request, "schedule.html", entries=entries, now=now)


@router.get("/exports", response_class=HTMLResponse)
def exports_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    with runtime.engine.connect() as connection:
        now = views.database_now(connection)
        counts = views.exports(connection)
        schedules = views.export_schedules(connection)
        recent = views.recent_exports(connection)
    return _page(
        request, "exports.html", counts=counts, schedules=schedules, exports=recent, now=now
    )


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    with runtime.engine.connect() as connection:
        now = views.database_now(connection)
        summary = views.deliveries(connection)
        waiting = views.waiting_deliveries(connection)
    return _page(request, "deliveries.html", summary=summary, waiting=waiting, now=now)
