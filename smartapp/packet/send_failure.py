"""Why a send failed, in words for the clinician or coordinator: filing in the EHR or sending to a
receiving center. No URL, token or stack trace; the HTTP status in parentheses for whoever they call
about it; the server's own OperationOutcome text, cut to a readable length. No final period."""

from __future__ import annotations

import httpx2

from launch.errors import FhirAuthError, FhirError
from smartapp.wording import join

# A server's OperationOutcome text is shown as it wrote it, cut to a readable length.
DETAIL_CHARS = 300


def send_failure_words(
    exc: FhirError, *, server: str, verb: str, did: str, what: str, signed_out: str
) -> str:
    """`server`: "the EHR"; `verb` / `did`: "file" / "filed"; `what`: "the referral letter";
    `signed_out`: the whole sentence for a refused sign-in."""
    said = join(d[:DETAIL_CHARS].rstrip(" .") for d in exc.details)
    status = f" (HTTP {exc.status})" if exc.status else ""
    named = server[:1].upper() + server[1:]
    if isinstance(exc, FhirAuthError):
        return signed_out
    if exc.status is None:
        if isinstance(exc.__cause__, httpx2.TimeoutException):
            return f"{named} did not answer in time when SecondLook {did} {what}, even after retrying"
        return f"SecondLook could not reach {server} to {verb} {what}, even after retrying"
    if exc.status >= 500 or exc.status in (408, 429):
        busy = f"{named} had a problem on its side{status} when SecondLook {did} {what}, even after retrying"
        return f"{busy}: {said}" if said else busy
    if exc.status == 403:
        refused = f"{named} did not allow SecondLook to {verb} {what}{status}"
    else:
        refused = f"{named} refused {what}{status}"
    return f"{refused}: {said}" if said else refused
