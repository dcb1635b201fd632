from __future__ import annotations

import pytest

from launch.urls import normalize_url, remove_dot_segments, url_under_base

BASE = "https://ehr.example.org/fhir/tenantA"


@pytest.mark.parametrize(
    ("path", "expected"),
    [  # RFC 3986 §5.4 examples, reduced to their paths
        ("/a/b/c/./../../g", "/a/g"),
        ("/b/c/d;p/../../g", "/b/g"),
        ("/b/c/..", "/b/"),
        ("/b/c/.", "/b/c/"),
        ("/../../g", "/g"),
        ("/a//b/../c", "/a//c"),
    ],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTPS://EHR.example.org/fhir/tenantA/%7Euser/%41b",
            "https://ehr.example.org/fhir/tenantA/~user/Ab",
        ),
        (
            "https://ehr.example.org/fhir/tenantA/a%2e%2E/x%3a",
            "https://ehr.example.org/fhir/tenantA/a../x%3A",
        ),
        ("https://ehr.example.org:8443/fhir/%2e%2e/x?y=1#frag", "https://ehr.example.org:8443/x?y=1"),
        ("https://ehr.example.org", "https://ehr.example.org/"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://ehr.example.org/fhir",
        "https://user@ehr.example.org/fhir",
        "https://ehr.example.org/fhir/a%2fb",
        "https://ehr.example.org/fhir/a%5Cb",
        "https://ehr.example.org/fhir\\..\\x",
        "https://ehr.example.org/fhir/..;/x",
        "https://ehr.example.org/fhir/a\r\nb",
        "https://ehr.example.org:99999/fhir",
    ],
)
def test_untrustworthy_urls_are_refused(url: str) -> None:
    assert normalize_url(url) is None


@pytest.mark.parametrize(
    "url",
    [
        BASE + "/../tenantB/Patient/1",
        BASE + "/%2e%2e/tenantB/Patient/1",
        BASE + "/%2E%2e/tenantB/Patient/1",
        BASE + "B/Patient/1",  # a sibling whose name starts like the base
        "https://ehr.example.org/fhir/tenantA/../../auth/jwks",
        "http://ehr.example.org/fhir/tenantA/Patient/1",
        "https://ehr.example.org.evil.test/fhir/tenantA/Patient/1",
    ],
)
def test_outside_the_base(url: str) -> None:
    assert url_under_base(url, BASE) is None


@pytest.mark.parametrize(
    ("url", "requested"),
    [
        (BASE, BASE),
        (BASE + "/Patient/1", BASE + "/Patient/1"),
        (BASE + "/Binary/x/../b1", BASE + "/Binary/b1"),
        (BASE + "/Observation?page=2&_getpages=a%2Fb", BASE + "/Observation?page=2&_getpages=a%2Fb"),
        ("https://EHR.example.org/fhir/tenantA/./Patient/1", BASE + "/Patient/1"),
    ],
)
def test_under_the_base_gives_the_url_to_request(url: str, requested: str) -> None:
    assert url_under_base(url, BASE + "/") == requested
