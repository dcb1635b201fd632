"""Every failure becomes a specific page (or JSON under /api/) saying what happened and what the
user can do. No stack traces, no tokens, no PHI."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from launch.errors import FhirError, LaunchError

log = structlog.get_logger(__name__)


class AppError(Exception):
    def __init__(
        self,
        status_code: int,
        error: str,
        title: str,
        message: str,
        action: str = "",
        link: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.title = title
        self.message = message
        self.action = action
        # (same-origin path built by the app, button text): the next step, when there is one.
        self.link = link


def too_deep() -> AppError:
    return AppError(
        400,
        "request_too_deep",
        "The request is nested too deeply",
        "The JSON body nests objects or arrays too deeply to be read; nothing was processed.",
        "Send valid FHIR or CDS Hooks JSON.",
    )


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def error_response(request: Request, exc: AppError) -> Response:
    if wants_json(request):
        body = {"error": exc.error, "title": exc.title, "message": exc.message, "action": exc.action}
        return JSONResponse(body, status_code=exc.status_code)
    templates = request.app.state.services.templates
    html = templates.get_template("error.html").render(error=exc)
    return HTMLResponse(html, status_code=exc.status_code)


LAUNCH_TITLES = {
    "unregistered_issuer": "This EHR is not registered with SecondLook",
    "access_denied": "Access was not granted",
    "invalid_state": "This sign-in link is no longer valid",
    "session_expired": "Your SecondLook session has ended",
}


def launch_error_to_app_error(exc: LaunchError) -> AppError:
    title = LAUNCH_TITLES.get(exc.error, "SecondLook could not be launched")
    action = "Close this window and launch SecondLook again from the patient's chart."
    if exc.error == "unregistered_issuer":
        action = (
            "An administrator must add this EHR (its FHIR base URL as `iss`, the client id and the client "
            "authentication) to the EHR registry file named by SECONDLOOK_EHR_CONFIG; see README, "
            "'Register an EHR'."
        )
    return AppError(exc.status_code, exc.error, title, exc.description, action)


def fhir_error_to_app_error(exc: FhirError) -> AppError:
    return AppError(
        502,
        "ehr_error",
        "The EHR did not return the patient's record",
        str(exc),
        "Try again in a minute; if it keeps failing, relaunch from the EHR or contact support.",
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        log.info(
            "request_failed",
            error=exc.error,
            status=exc.status_code,
            path=request.scope.get("route_path", ""),
        )
        return error_response(request, exc)

    @app.exception_handler(LaunchError)
    async def _launch_error(request: Request, exc: LaunchError) -> Response:
        log.info("launch_failed", error=exc.error, status=exc.status_code)
        return error_response(request, launch_error_to_app_error(exc))

    @app.exception_handler(FhirError)
    async def _fhir_error(request: Request, exc: FhirError) -> Response:
        log.warning("fhir_failed", error=type(exc).__name__)
        return error_response(request, fhir_error_to_app_error(exc))

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> Response:
        # json.loads on a body nested tens of thousands deep.
        log.info("request_failed", error="request_too_deep", status=400)
        return error_response(request, too_deep())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected_error", error_type=type(exc).__name__)
        return error_response(
            request,
            AppError(
                500,
                "internal_error",
                "Something went wrong in SecondLook",
                "The request could not be completed.",
                "Try again; if it keeps happening, contact support with the time of the error.",
            ),
        )
