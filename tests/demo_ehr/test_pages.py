"""The EHR pages: patient list from index.json, EHR chart with a sandboxed iframe, fixture loading."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from demo_ehr import DemoEhrConfig, create_demo_ehr

from .conftest import APP_ORIGIN, RunningEhr, run_demo_ehr

SANDBOX = (
    "allow-forms allow-modals allow-popups allow-popups-to-escape-sandbox "
    "allow-same-origin allow-scripts allow-downloads"
)


def test_launch_page_lists_index_patients_in_index_order(ehr: RunningEhr) -> None:
    response = httpx2.get(f"{ehr.base_url}/")
    assert response.status_code == 200
    html = response.text
    assert html.index("Beta patient title") < html.index("Alpha patient title")
    assert "Beta summary" in html
    assert "time-critical" in html and "rare-cancer" in html
    assert 'action="/launch"' in html
    assert 'formaction="/chart/alpha"' in html
    assert f'href="{APP_ORIGIN}/standalone"' in html
    assert "<script" not in html and "stylesheet" not in html  # no external assets
    assert re.search(r'<label><input type="checkbox" name="need_patient_banner"', html)


def test_chart_frames_the_app_with_a_fresh_launch(ehr: RunningEhr) -> None:
    first = httpx2.get(f"{ehr.base_url}/chart/alpha").text
    second = httpx2.get(f"{ehr.base_url}/chart/alpha").text
    sources = [re.search(r'<iframe[^>]*src="([^"]+)"', page) for page in (first, second)]
    assert all(sources)
    urls = [source.group(1).replace("&amp;", "&") for source in sources if source]
    launches = [parse_qs(urlsplit(url).query)["launch"][0] for url in urls]
    assert launches[0] != launches[1]
    assert parse_qs(urlsplit(urls[0]).query)["iss"] == [ehr.fhir_base]
    assert urls[0].startswith(f"{APP_ORIGIN}/launch?")
    assert f'sandbox="{SANDBOX}"' in first
    assert "Alpha" in first


def test_pages_may_only_be_framed_by_the_ehr_itself(ehr: RunningEhr) -> None:
    response = httpx2.get(f"{ehr.base_url}/chart/alpha")
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_unknown_patient_is_404(ehr: RunningEhr) -> None:
    assert httpx2.get(f"{ehr.base_url}/chart/nobody").status_code == 404
    assert httpx2.post(f"{ehr.base_url}/launch", data={"patient": "nobody"}).status_code == 404


def test_html_is_escaped(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "x1", "name": [{"text": "<b>Bold</b>"}]}}],
    }
    (tmp_path / "x.json").write_text(json.dumps(bundle))
    with run_demo_ehr(patients_dir=tmp_path) as ehr:
        html = httpx2.get(f"{ehr.base_url}/").text
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html
    assert "<b>Bold</b>" not in html


def test_without_index_patients_are_listed_by_name_and_id(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "solo",
                    "name": [{"family": "Solo", "given": ["Han"]}],
                }
            },
            {"fullUrl": "urn:uuid:obs-1", "resource": {"resourceType": "Observation", "status": "final"}},
        ],
    }
    (tmp_path / "solo.json").write_text(json.dumps(bundle))
    with run_demo_ehr(patients_dir=tmp_path, include_large_patient=True) as ehr:
        html = httpx2.get(f"{ehr.base_url}/").text
    assert "Han Solo (solo)" in html
    assert "Benchmark patient — about 2,000 resources" in html


@pytest.mark.parametrize("bad", ["{not json", '{"resourceType": "Patient", "id": "p"}', "[]"])
def test_bad_fixture_files_are_skipped_not_fatal(tmp_path: Path, bad: str) -> None:
    (tmp_path / "bad.json").write_text(bad)
    app = create_demo_ehr(
        DemoEhrConfig(base_url="http://127.0.0.1:1", patients_dir=tmp_path, include_large_patient=False)
    )
    assert app.state.demo_ehr.resources.listings == []


def test_non_loopback_http_base_url_is_refused() -> None:
    with pytest.raises(ValueError):
        create_demo_ehr(DemoEhrConfig(base_url="http://ehr.example.org"))
