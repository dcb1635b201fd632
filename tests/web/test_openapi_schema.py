"""The OpenAPI document describes the findings fully: every object of the findings response has its
properties listed (no `additionalProperties: true`, no untyped object)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launch.registry import Registry
from smartapp.web.app import create_app
from tests.web.conftest import app_settings


def open_objects(schema: Any, schemas: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    if isinstance(schema, list):
        return [p for i, item in enumerate(schema) for p in open_objects(item, schemas, f"{path}[{i}]", seen)]
    if not isinstance(schema, dict):
        return []
    found = []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return open_objects(schemas[name], schemas, name, seen)
    if schema.get("additionalProperties") is True or (
        schema.get("type") == "object" and "properties" not in schema and "additionalProperties" not in schema
    ):
        found.append(path)
    for key, value in schema.items():
        found += open_objects(value, schemas, f"{path}/{key}", seen)
    return found


def test_the_findings_response_has_no_untyped_object(tmp_path: Path) -> None:
    document = create_app(app_settings("http://127.0.0.1:9", tmp_path), Registry([])).openapi()
    schemas = document["components"]["schemas"]
    response = document["paths"]["/api/s/{sid}/findings"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert open_objects(response, schemas, "FindingsResponse", set()) == []
    finding = schemas["FindingWithDecision"]["properties"]
    assert {
        "trigger",
        "urgency",
        "summary",
        "action",
        "facts",
        "reviews",
        "not_found",
        "evidence",
    } <= finding.keys()
