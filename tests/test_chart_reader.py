"""The oncology read plan against a pytest-httpserver EHR: Observations read as date partitions
plus the undated ones, and a server that refuses `date:missing` still loses nothing."""

from __future__ import annotations

import json
from datetime import date

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.fetch import SearchSpec
from launch.fhir_client import FhirClient
from launch.http import create_http_client
from launch.scopes import GrantedScopes
from smartapp.chart_reader import build_searches, read_chart
from smartapp.read_plan import OBSERVATION_WINDOWS, REPORT_WINDOWS

TODAY = date(2026, 11, 25)
OBSERVATIONS = [
    {
        "resourceType": "Observation",
        "id": "recent",
        "status": "final",
        "effectiveDateTime": "2026-11-01",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "CEA"},
    },
    {
        "resourceType": "Observation",
        "id": "mid",
        "status": "final",
        "effectiveDateTime": "2025-12-01",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "CEA"},
    },
    {
        "resourceType": "Observation",
        "id": "old",
        "status": "final",
        "effectiveDateTime": "2019-01-01",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "CEA"},
    },
    {
        "resourceType": "Observation",
        "id": "undated",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "HER2 IHC"},
        "valueString": "2+",
    },
]


REPORTS = [
    {
        "resourceType": "DiagnosticReport",
        "id": f"report-{when or 'undated'}",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Pathology"},
        **({"effectiveDateTime": when} if when else {}),
    }
    for when in ("2026-11-20", "2026-03-01", "2025-06-01", "2020-02-02", None)
]


class Token:
    async def token(self) -> str:
        return "t"

    async def reauthenticate(self, stale: str | None = None) -> str:
        raise AssertionError("no re-authentication expected")


def bundle(resources: list[dict], next_url: str | None = None) -> Response:
    body: dict = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        body["link"] = [{"relation": "next", "url": next_url}]
    return Response(json.dumps(body), content_type="application/fhir+json")


def observation_handler(
    refuse_missing: bool,
    resources: list[dict] = OBSERVATIONS,
    page_size: int = 100,
    seen: list[dict[str, list[str]]] | None = None,
):
    """Answers the plain search in pages of `page_size` (a next link, then the rest), the date
    windows and `date:missing` whole."""

    def handle(request: Request) -> Response:
        args = request.args
        if seen is not None:
            seen.append({key: args.getlist(key) for key in args})
        if args.get("page") == "2":
            return bundle(resources[page_size:])
        if "date:missing" in args:
            if refuse_missing:
                body = {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "not-supported",
                            "diagnostics": "Modifier :missing is not supported",
                        }
                    ],
                }
                return Response(json.dumps(body), status=400, content_type="application/fhir+json")
            return bundle([o for o in resources if "effectiveDateTime" not in o])
        dates = args.getlist("date")
        if not dates and len(resources) > page_size:
            return bundle(resources[:page_size], f"{request.base_url}?{request.query_string.decode()}&page=2")

        def inside(obs: dict) -> bool:
            when = obs.get("effectiveDateTime")
            if when is None:
                return not dates
            for value in dates:
                prefix, day = value[:2], value[2:]
                if prefix == "ge" and not when >= day:
                    return False
                if prefix == "lt" and not when < day:
                    return False
            return True

        return bundle([o for o in resources if inside(o)])

    return handle


OTHER_TYPES = (
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Procedure",
    "MedicationRequest",
    "MedicationAdministration",
    "ServiceRequest",
    "CarePlan",
    "Coverage",
    "Specimen",
    "AllergyIntolerance",
    "MedicationStatement",
)


def serve_the_rest(httpserver: HTTPServer, exclude: frozenset[str] | set[str] = frozenset()) -> None:
    """The patient search answers p1; every other type of the read plan answers an empty searchset."""
    patient = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}],
    }
    httpserver.expect_request("/fhir/Patient").respond_with_data(
        json.dumps(patient), content_type="application/fhir+json"
    )
    for rtype in OTHER_TYPES:
        if rtype not in exclude:
            httpserver.expect_request(f"/fhir/{rtype}").respond_with_data(
                json.dumps({"resourceType": "Bundle", "type": "searchset"}),
                content_type="application/fhir+json",
            )


def serve(
    httpserver: HTTPServer, refuse_missing: bool, page_size: int = 2
) -> tuple[list[dict[str, list[str]]], list[dict[str, list[str]]]]:
    """The Observation and DiagnosticReport requests the server saw. A page of 2 makes the whole
    searches long enough to be read as date windows."""
    observations: list[dict[str, list[str]]] = []
    reports: list[dict[str, list[str]]] = []
    httpserver.expect_request("/fhir/Observation").respond_with_handler(
        observation_handler(refuse_missing, OBSERVATIONS, page_size, observations)
    )
    httpserver.expect_request("/fhir/DiagnosticReport").respond_with_handler(
        observation_handler(refuse_missing, REPORTS, page_size, reports)
    )
    httpserver.expect_request("/fhir/Patient/p1").respond_with_json({"resourceType": "Patient", "id": "p1"})
    serve_the_rest(httpserver, exclude={"DiagnosticReport"})
    return observations, reports


async def load(httpserver: HTTPServer) -> list[str]:
    async with create_http_client() as http:
        client = FhirClient(httpserver.url_for("/fhir"), http, Token())
        snapshot = await read_chart(client, "p1", GrantedScopes.parse("patient/*.rs"), today=TODAY)
    assert snapshot.gaps == []
    reports = sorted(r["id"] for r in snapshot.resources if r["resourceType"] == "DiagnosticReport")
    assert reports == sorted(r["id"] for r in REPORTS)  # every window and the undated one
    return sorted(r["id"] for r in snapshot.resources if r["resourceType"] == "Observation")


async def test_date_partitions_and_undated_cover_every_observation(httpserver: HTTPServer) -> None:
    observations, reports = serve(httpserver, refuse_missing=False)
    assert await load(httpserver) == ["mid", "old", "recent", "undated"]
    # The whole search's first page had a next page: the windows were read instead of following it.
    for seen, windows in ((observations, OBSERVATION_WINDOWS), (reports, REPORT_WINDOWS)):
        assert "date" not in seen[0] and not any("page" in args for args in seen)
        assert len(seen) == 1 + len(windows) + 1
        assert sum(1 for args in seen if "date:missing" in args) == 1


async def test_a_short_record_is_one_request_per_type(httpserver: HTTPServer) -> None:
    observations, reports = serve(httpserver, refuse_missing=False, page_size=100)
    assert await load(httpserver) == ["mid", "old", "recent", "undated"]
    assert observations == [{"patient": ["p1"], "_count": ["100"]}]
    assert reports == [{"patient": ["p1"], "_count": ["100"]}]


async def test_server_refusing_date_missing_falls_back_to_the_whole_search(httpserver: HTTPServer) -> None:
    observations, _reports = serve(httpserver, refuse_missing=True)
    assert await load(httpserver) == ["mid", "old", "recent", "undated"]
    assert any("page" in args for args in observations)  # the whole search, followed to its end


def test_partitions_are_disjoint_date_windows() -> None:
    (whole,) = [s for s in build_searches("p1", TODAY) if s.resource_type == "Observation"]
    specs = list(whole.parts)
    dates = [s.params.get("date") or s.params.get("date:missing") for s in specs]
    assert dates[0] == "ge2026-10-11"
    assert dates[1] == ["ge2026-08-27", "lt2026-10-11"]
    assert dates[-2] == "lt2023-11-26"
    assert dates[-1] == "true"
    assert len(specs) == len(OBSERVATION_WINDOWS) + 1
    _assert_contiguous(specs)


def test_reports_are_read_as_date_windows_too() -> None:
    (whole,) = [s for s in build_searches("p1", TODAY) if s.resource_type == "DiagnosticReport"]
    specs = list(whole.parts)
    assert len(specs) == len(REPORT_WINDOWS) + 1
    assert specs[-1].params["date:missing"] == "true"
    assert specs[-2].params["date"] == "lt2024-11-25"
    _assert_contiguous(specs)


def _assert_contiguous(specs: list[SearchSpec]) -> None:
    """Every lower edge is the next window's upper edge: no gap, no overlap."""
    for newer, older in zip(specs[:-2], specs[1:-1], strict=True):
        low = newer.params["date"] if isinstance(newer.params["date"], str) else newer.params["date"][0]
        high = older.params["date"] if isinstance(older.params["date"], str) else older.params["date"][1]
        assert low[2:] == high[2:]


CATEGORIZED = [
    {
        "resourceType": "Observation",
        "id": "lab",
        "status": "final",
        "effectiveDateTime": "2026-11-01",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "CEA"},
        "category": [{"coding": [{"code": "laboratory"}]}],
    },
    {
        "resourceType": "Observation",
        "id": "vital",
        "status": "final",
        "effectiveDateTime": "2026-11-01",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Weight"},
        "category": [{"coding": [{"code": "vital-signs"}]}],
    },
]


def epic_like_observations(request: Request) -> Response:
    """Refuses an Observation search without `category`, as Epic does."""
    category = request.args.get("category")
    if not category:
        body = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "required", "diagnostics": "category is required"}],
        }
        return Response(json.dumps(body), status=400, content_type="application/fhir+json")
    return bundle([o for o in CATEGORIZED if o["category"][0]["coding"][0]["code"] == category])


async def test_categories_required_by_the_server_are_searched_one_by_one(httpserver: HTTPServer) -> None:
    serve_with_observations(httpserver, epic_like_observations)
    async with create_http_client() as http:
        client = FhirClient(httpserver.url_for("/fhir"), http, Token())
        plain = await read_chart(client, "p1", GrantedScopes.parse("patient/*.rs"), today=TODAY)
        categorized = await read_chart(
            client,
            "p1",
            GrantedScopes.parse("patient/*.rs"),
            today=TODAY,
            required_categories={"Observation": ["laboratory", "vital-signs"]},
        )
    # Without the registration's categories the refusal is a visible gap, not a silent nothing.
    assert {g.resource_type for g in plain.gaps} == {"Observation"}
    assert categorized.gaps == []
    assert sorted(r["id"] for r in categorized.resources if r["resourceType"] == "Observation") == [
        "lab",
        "vital",
    ]


def serve_with_observations(httpserver: HTTPServer, handler) -> None:
    httpserver.expect_request("/fhir/Observation").respond_with_handler(handler)
    serve_the_rest(httpserver)
