"""Report texts fetched for a bucket (smartapp/screening/hydrate.py), kept in a file beside it: one
line per patient and attachment URL, `{"patient", "url", "contentType", "data"}` with the bytes in
base64. The bucket task (smartapp/screening/bucket.py) inlines them into the patient's resources as
it parses them, as if the export had carried them: the bucket file itself is never rewritten, so
hydrating a bucket costs the calling process the report lines it reads, not every line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhirmaps import json_codec
from fhirmaps.reports import attachment_slots

HOLDERS = ("DiagnosticReport", "DocumentReference")  # resources whose attachments are fetched
Texts = dict[tuple[str, str], tuple[str, str]]  # (patient id, url) -> (base64 data, content type)


def texts_path(bucket: Path) -> Path:
    return bucket.with_name(bucket.name + ".texts")


def text_line(patient_id: str, url: str, content_type: str, data: str) -> bytes:
    item = {"patient": patient_id, "url": url, "contentType": content_type, "data": data}
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def read_texts(bucket: Path) -> Texts:
    """The texts fetched for `bucket`; none when nothing was fetched (or the input needs no fetching)."""
    path = texts_path(bucket)
    if not path.exists():
        return {}
    texts: Texts = {}
    with path.open("rb") as stream:
        for line in stream:
            item = json_codec.loads(line)
            texts[(item["patient"], item["url"])] = (item["data"], item["contentType"])
    return texts


def inline_texts(resources: list[dict[str, Any]], patient_id: str, texts: Texts) -> None:
    """Each fetched text written into the attachment that points to it (`data`, and `contentType`
    when the attachment has none); an attachment that already has data is left as it is."""
    for resource in resources:
        if resource.get("resourceType") not in HOLDERS:
            continue
        for _, attachment in attachment_slots(resource):
            got = texts.get((patient_id, str(attachment.get("url") or "")))
            if got is not None and not attachment.get("data"):
                attachment["data"] = got[0]
                attachment.setdefault("contentType", got[1])
