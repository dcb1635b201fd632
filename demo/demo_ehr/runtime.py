"""The live parts of one demo EHR instance (kept in its `app.state`, reached by the routes through
`deps.py`) and the HTML pages it renders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from .authorization_server import SmartAuthorizationServer
from .bulk_export import ExportManager
from .config import DemoEhrConfig
from .records import MemoryStore
from .resource_store import ResourceStore
from .scopes import describe_scope

_templates = Environment(
    loader=PackageLoader("demo_ehr", "templates"),
    autoescape=select_autoescape(["html"]),
)
_templates.filters["describe_scope"] = describe_scope


@dataclass
class DemoEhr:
    config: DemoEhrConfig
    memory: MemoryStore
    resources: ResourceStore
    server: SmartAuthorizationServer
    exports: ExportManager


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    headers = {
        "Cache-Control": "no-store",
        # Inline styles only; only the EHR's own chart page may frame its pages (consent clickjacking).
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action *; "
        "frame-src *; frame-ancestors 'self'",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(html, status_code=status_code, headers=headers)


def render_error(heading: str, message: str, status_code: int = 400) -> HTMLResponse:
    return render("error.html", status_code=status_code, heading=heading, message=message)
