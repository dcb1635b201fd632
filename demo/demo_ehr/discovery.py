"""Discovery documents of the demo EHR: SMART configuration, OpenID configuration,
the CapabilityStatement (for clients that still read `oauth-uris` from it) and the style."""

from __future__ import annotations

from typing import Any

from .backend_auth import SIGNING_ALGS
from .config import DemoEhrConfig

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "context-banner",
    "context-style",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "permission-offline",
    "permission-online",
    "sso-openid-connect",
    "authorize-post",
]
SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "online_access",
    "offline_access",
    "patient/*.read",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.read",
    "user/*.rs",
    "patient/ServiceRequest.c",
    "patient/DocumentReference.c",
    "system/*.rs",
    "system/*.read",
]
SEARCH_PARAMS = {
    "patient": "reference",
    "subject": "reference",
    "encounter": "reference",
    "category": "token",
    "code": "token",
    "status": "token",
    "identifier": "token",
    "_id": "token",
    "date": "date",
    "name": "string",
}


def smart_configuration(config: DemoEhrConfig) -> dict[str, Any]:
    return {
        "issuer": config.fhir_base,
        "jwks_uri": f"{config.origin}/auth/jwks",
        "authorization_endpoint": f"{config.origin}/auth/authorize",
        "token_endpoint": f"{config.origin}/auth/token",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "scopes_supported": SCOPES_SUPPORTED,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGS),
        "id_token_signing_alg_values_supported": ["RS256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(config: DemoEhrConfig) -> dict[str, Any]:
    return {
        "issuer": config.fhir_base,
        "jwks_uri": f"{config.origin}/auth/jwks",
        "authorization_endpoint": f"{config.origin}/auth/authorize",
        "token_endpoint": f"{config.origin}/auth/token",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "fhirUser", "name"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }


_BULK = "http://hl7.org/fhir/uv/bulkdata"
_EXPORT_OPERATIONS = {
    "Patient": {"name": "export", "definition": f"{_BULK}/OperationDefinition/patient-export"},
    "Group": {"name": "export", "definition": f"{_BULK}/OperationDefinition/group-export"},
}


def capability_statement(config: DemoEhrConfig, resource_types: list[str]) -> dict[str, Any]:
    oauth_uris = {
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [
            {"url": "authorize", "valueUri": f"{config.origin}/auth/authorize"},
            {"url": "token", "valueUri": f"{config.origin}/auth/token"},
        ],
    }
    resources = [
        {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": name, "type": kind} for name, kind in SEARCH_PARAMS.items()],
            **({"operation": [_EXPORT_OPERATIONS[rtype]]} if rtype in _EXPORT_OPERATIONS else {}),
        }
        for rtype in sorted(resource_types)
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "kind": "instance",
        "software": {"name": "SecondLook demo EHR"},
        "implementation": {"description": "SecondLook demo EHR", "url": config.fhir_base},
        "fhirVersion": "4.0.1",
        "instantiates": [f"{_BULK}/CapabilityStatement/bulk-data"],
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [oauth_uris],
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                },
                "resource": resources,
                "interaction": [{"code": "batch"}],
                "operation": [{"name": "export", "definition": f"{_BULK}/OperationDefinition/export"}],
            }
        ],
    }


def smart_style() -> dict[str, Any]:
    # Field names follow the SMART App Launch styling guidance (context-style capability).
    return {
        "color_background": "#f4f6f8",
        "color_error": "#a4262c",
        "color_highlight": "#005a9e",
        "color_modal_backdrop": "rgba(0, 0, 0, 0.4)",
        "color_success": "#2e7d32",
        "color_text": "#1b1f23",
        "dim_border_radius": "4px",
        "dim_font_size": "15px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        "font_family_heading": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    }
