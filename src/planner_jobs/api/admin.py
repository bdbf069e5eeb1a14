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

import hashlib
import hmac
import ipaddress
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.templating import Jinja2Templates

from planner_jobs import __version__
from planner_jobs.api.deps import RuntimeDep
from planner_jobs.engine import actions
from planner_jobs.engine.queues import QUEUES, STATUSES
from planner_jobs.inspection import views
from planner_jobs.inspection.text import ago, duration

SESSION_COOKIE = "planner_admin_session"
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


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    runtime = request.app.state.runtime
    session = request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(32)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "version": __version__,
            "csrf": _csrf_token(runtime, session),
            "ago": ago,
            "duration": duration,
            **context,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " form-action 'self'; frame-ancestors 'none'"
    )
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


@router.get("/jobs", response_class=HTMLResponse)
def job_list(
    request: Request,
    runtime: RuntimeDep,
    queue: Annotated[str | None, Query()] = None,
    task: Annotated[str | None, Query()] = None,
    job_status: Annotated[str | None, Query(alias="status")] = None,
    before: Annotated[int | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> HTMLResponse:
    filters = {"queue": queue or None, "task": task or None, "status": job_status or None}
    if filters["status"] not in (None, *STATUSES):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown status")
    with runtime.engine.connect() as connection:
        found = views.jobs(
            connection,
            queue=filters["queue"],
            task=filters["task"],
            status=filters["status"],
            before=before,
            limit=limit,
        )
        now = views.database_now(connection)
    more = (
        "?" + urlencode({k: v for k, v in {**filters, "before": found[-1].id}.items() if v})
        if len(found) == limit
        else None
    )
    return _page(
        request,
        "jobs.html",
        jobs=found,
        now=now,
        filters=filters,
        more=more,
        queues=QUEUES,
        tasks=views.TASK_NAMES,
        statuses=STATUSES,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, runtime: RuntimeDep, job_id: int) -> HTMLResponse:
    with runtime.engine.connect() as connection:
        detail = views.job(connection, job_id, stalled_after=runtime.settings.stalled_after)
        now = views.database_now(connection)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no job {job_id}")
    done = request.query_params.get("done")
    return _page(request, "job.html", d=detail, now=now, done=done)


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
    return RedirectResponse(
        f"/admin/jobs/{job_id}?{urlencode({'done': done})}", status.HTTP_303_SEE_OTHER
    )


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
        recent = views.recent_exports(connection)
    return _page(request, "exports.html", counts=counts, exports=recent, now=now)


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    with runtime.engine.connect() as connection:
        now = views.database_now(connection)
        summary = views.deliveries(connection)
        waiting = views.waiting_deliveries(connection)
    return _page(request, "deliveries.html", summary=summary, waiting=waiting, now=now)
