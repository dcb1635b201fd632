"""The EHR side a clinician sees: the patient list, EHR launches and the framed chart."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from .deps import Config, Ehr, Resources
from .discovery import smart_style
from .records import DEMO_PRACTITIONER_ID, LaunchContext
from .runtime import DemoEhr, render, render_error

_PRACTITIONER_ID = re.compile(r"[A-Za-z0-9.-]{1,64}")

router = APIRouter()


def _banner_flag(values: list[str]) -> bool:
    # The launch form sends a hidden "false" then the checkbox "true": the last value wins,
    # and a caller that sends nothing gets the SMART default (banner shown).
    return values[-1].lower() != "false" if values else True


def app_launch_url(ehr: DemoEhr, context: LaunchContext) -> str:
    """The app's launch URL for a new EHR launch with this context (`iss` and `launch`)."""
    launch_id = ehr.memory.create_launch(context)
    query = urlencode({"iss": ehr.config.fhir_base, "launch": launch_id})
    separator = "&" if "?" in ehr.config.app_launch_url else "?"
    return f"{ehr.config.app_launch_url}{separator}{query}"


def patient_launch_url(
    ehr: DemoEhr,
    patient_id: str,
    need_banner: bool,
    intent: str | None = None,
    app_context: str | None = None,
) -> str | None:
    if ehr.resources.get("Patient", patient_id) is None:
        return None
    context = LaunchContext(
        patient_id=patient_id,
        encounter_id=ehr.resources.latest_encounter(patient_id),
        need_patient_banner=need_banner,
        intent=intent or None,
        app_context=app_context or None,
    )
    return app_launch_url(ehr, context)


@router.get("/", include_in_schema=False)
async def patient_list(resources: Resources, config: Config) -> Response:
    return render("launch.html", patients=resources.listings, standalone_url=config.app_standalone_url)


@router.api_route("/launch", methods=["GET", "POST"], include_in_schema=False)
async def ehr_launch(request: Request, ehr: Ehr) -> Response:
    """Fields (query or form): `patient` (required), `need_patient_banner` (last value wins,
    default true), `intent` and `app_context` (optional, passed through to the token response,
    the latter as `appContext`, as an EHR does for a CDS Hooks card's SMART link)."""
    values = list(request.query_params.multi_items())
    if request.method == "POST":
        form = await request.form()
        values += [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
    patient_id = next((value for key, value in values if key == "patient"), "")
    banner = _banner_flag([value for key, value in values if key == "need_patient_banner"])
    intent = next((value for key, value in values if key == "intent"), None)
    app_context = next((value for key, value in values if key == "app_context"), None)
    target = patient_launch_url(ehr, patient_id, banner, intent, app_context)
    if target is None:
        return render_error("Unknown patient", "That patient is not in the demo EHR.", 404)
    return RedirectResponse(target, status_code=303)


@router.post("/coordinator-launch", include_in_schema=False)
async def coordinator_launch(request: Request, ehr: Ehr) -> Response:
    """An EHR launch without patient context, as a tumor-board coordinator starts an app from
    the EHR's toolbar. Form field `practitioner` (optional) is the signed-in user's
    Practitioner id, which becomes the id_token's fhirUser."""
    form = await request.form()
    practitioner = str(form.get("practitioner") or DEMO_PRACTITIONER_ID)
    if not _PRACTITIONER_ID.fullmatch(practitioner):
        return render_error("Unknown user", "A practitioner id is letters, digits, '-' and '.'.", 400)
    target = app_launch_url(ehr, LaunchContext(practitioner_id=practitioner))
    return RedirectResponse(target, status_code=303)


@router.get("/chart/{patient_id}", include_in_schema=False)
async def chart(patient_id: str, request: Request, ehr: Ehr) -> Response:
    banner = _banner_flag(request.query_params.getlist("need_patient_banner"))
    target = patient_launch_url(ehr, patient_id, banner)
    listing = ehr.resources.listing(patient_id)
    if target is None or listing is None:
        return render_error("Unknown patient", "That patient is not in the demo EHR.", 404)
    return render("chart.html", patient=listing, app_url=target)


@router.get("/smart-style.json", include_in_schema=False)
async def style() -> dict[str, str]:
    return smart_style()
