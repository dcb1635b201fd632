"""The errors `launch` raises: OAuth/SMART launch failures and FHIR REST failures.

Descriptions are written for the person in front of the EHR: what happened and what they can do.
They never contain tokens, codes or full request URLs (query strings can hold patient identifiers).
"""

from __future__ import annotations


class LaunchError(Exception):
    """A SMART launch step failed; `error` is the OAuth error string or one of ours."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status_code = status_code


class FhirError(Exception):
    """A FHIR REST interaction failed.

    `operation` names the interaction and resource type (e.g. "search Condition"), never the URL;
    `details` are the texts of the server's OperationOutcome, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        operation: str = "",
        details: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.operation = operation
        self.details = details


class TemporaryFhirError(FhirError):
    """The EHR kept failing with a temporary error (timeouts, 429, 5xx) after all retries."""


class FatalFhirError(FhirError):
    """The EHR refused the request or answered with something unusable; retrying will not help."""


class FhirAuthError(FhirError):
    """The EHR rejected our access token even after re-authenticating once."""
