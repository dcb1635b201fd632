"""Where a bearer token may go: URL normalisation and the "is this under the FHIR base?" check.

Next links, attachment URLs and CDS `fhirServer` reads all reach the EHR through `FhirClient`,
which asks `url_under_base` before sending a token and then requests the URL it returns. The
check and the request must see the same URL: comparing the raw text and letting the HTTP client
(or the server) resolve `..` afterwards sent the token to `…/fhir/../auth/jwks`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# RFC 3986 §2.3: percent-encoded unreserved characters mean the same as the characters themselves.
_UNRESERVED_ESCAPE = re.compile(r"%(2[dDeE]|5[fF]|7[eE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA])")
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
# An encoded slash or backslash makes a segment some servers split again after decoding.
_ENCODED_SEPARATOR = re.compile(r"%(2[fF]|5[cC])")
# Control characters anywhere, and spaces in the path, are never part of a URL an EHR means.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_url(url: str) -> str | None:
    """The URL in RFC 3986 normal form (§6.2.2), or None when it cannot be trusted to mean one path.

    Lower-case scheme and host, unreserved escapes decoded and other escapes upper-cased, dot
    segments removed (§5.2.4), fragment dropped. Refused: non-http(s) schemes, user info, encoded
    or literal backslashes, encoded slashes, and `..;`-style segments (Tomcat reads them as `..`).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    if (
        "\\" in parts.path
        or _ENCODED_SEPARATOR.search(parts.path)
        or _CONTROL.search(url)
        or " " in parts.path
    ):
        return None
    path = _ESCAPE.sub(lambda m: m.group(0).upper(), parts.path)
    path = _UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path)
    if any(segment.split(";", 1)[0] in (".", "..") and ";" in segment for segment in path.split("/")):
        return None
    path = remove_dot_segments(path) or "/"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on a path whose unreserved escapes are already decoded."""
    output: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    # A trailing "." or ".." leaves the path ending in "/", as the RFC's algorithm does.
    if path.endswith(("/.", "/..")) or path in (".", ".."):
        output.append("")
    return ("/" if path.startswith("/") else "") + "/".join(output)


def url_under_base(url: str, base: str) -> str | None:
    """The normalised `url` when it lies under the FHIR `base` (same origin, path at or below the
    base path); None otherwise. Request the returned URL, never the original."""
    target, root = normalize_url(url), normalize_url(base)
    if target is None or root is None:
        return None
    target_parts, root_parts = urlsplit(target), urlsplit(root)
    if (target_parts.scheme, target_parts.netloc) != (root_parts.scheme, root_parts.netloc):
        return None
    root_path = root_parts.path.rstrip("/")
    if target_parts.path == root_path or target_parts.path.startswith(root_path + "/"):
        return target
    return None
