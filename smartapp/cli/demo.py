"""`secondlook demo`: the app plus the embedded demo EHR, on loopback, with no configuration."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from joserfc.jwk import ECKey, RSAKey

from launch.jwks import build_jwks
from launch.registry import Registration, Registry
from smartapp.cli import demo_screen
from smartapp.config import Settings
from smartapp.demo_ehr import DemoEhrConfig, create_demo_ehr
from smartapp.demo_ehr.backend_auth import generate_backend_key
from smartapp.demo_ehr.config import BackendClientConfig
from smartapp.demo_ehr.records import DEMO_PRACTITIONER_ID
from smartapp.logs import configure_logging
from smartapp.servers import Served, serve_all
from smartapp.web.app import create_app

DEMO_CLIENT_ID = "secondlook-demo"
# The app's SMART Backend Services client at the demo EHR (population screening, Bulk Data export).
DEMO_BACKEND_CLIENT_ID = "secondlook-demo-backend"
DEFAULT_PATIENTS = 200


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("demo", help="run SecondLook on the embedded demo EHR")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="demo EHR port; its launch page is at / (default 8000)")
    parser.add_argument("--app-port", type=int, default=None, help="SecondLook's port (default: --port + 1)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every demo EHR response")
    parser.add_argument("--data-dir", type=Path, default=Path("var/demo"), help="where the demo keeps its database")
    parser.add_argument("--no-screen", dest="screen", action="store_false",
                        help="do not screen the demo EHR's oncology clinic into the coordinator's worklist at start")
    parser.add_argument(
        "--patients",
        type=int,
        default=DEFAULT_PATIENTS,
        help=f"synthetic population added to the demo EHR for population screening (default {DEFAULT_PATIENTS}; 0: none)",
    )


def demo_registry(ehr_base: str, backend_key: RSAKey | ECKey | None = None) -> Registry:
    """The demo EHR's registration; with `backend_key`, also a backend_services block signing with
    it (the key lives in memory for the demo's lifetime)."""
    backend = None
    if backend_key is not None:
        backend = {
            "client_id": DEMO_BACKEND_CLIENT_ID,
            "scopes": "system/*.rs",
            "keys": [{"jwk": backend_key.as_dict(private=True), "kid": backend_key.kid}],
        }
    return Registry([
        Registration.model_validate({
            "iss": f"{ehr_base}/fhir",
            "display_name": "SecondLook demo EHR",
            "client_id": DEMO_CLIENT_ID,
            "client_auth": "public",
            "frame_ancestors": [ehr_base],
            "standalone": True,
            "backend_services": backend,
            # The demo EHR's signed-in user may open the referral worklist.
            "worklist_users": [f"Practitioner/{DEMO_PRACTITIONER_ID}"],
        })
    ])


def demo_backend_client(registry: Registry) -> BackendClientConfig:
    """What the demo EHR knows of the app's backend client: the JWKS the app publishes (as an EHR
    admin would register it), and the system scopes it may have."""
    return BackendClientConfig(DEMO_BACKEND_CLIENT_ID, jwks=build_jwks(registry), scopes=("system/*.rs",))


@dataclass(frozen=True)
class DemoStack:
    ehr: Served
    app: Served
    registry: Registry
    settings: Settings

    @property
    def registration(self) -> Registration:
        return self.registry.all()[0]


def build_demo(
    host: str, port: int, app_port: int, latency_ms: int, data_dir: Path, patients: int = 0
) -> DemoStack:
    ehr_base = f"http://{host}:{port}"
    app_base = f"http://{host}:{app_port}"
    settings = Settings(
        public_url=app_base,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'secondlook-demo.db'}",
        secret_key_file=data_dir / "secret.key",
    )
    registry = demo_registry(ehr_base, generate_backend_key("ES384"))
    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=ehr_base,
            app_launch_url=f"{app_base}/launch",
            app_standalone_url=f"{app_base}/standalone",
            redirect_uris=[f"{app_base}/callback"],
            latency_ms=latency_ms,
            stories_on=date.today(),  # the charts' stories ("surgery in 3 days") hold on the day the demo starts
            backend_clients=(demo_backend_client(registry),),
            synthetic_patients=patients,
        )
    )
    return DemoStack(Served(ehr, host, port), Served(create_app(settings, registry), host, app_port), registry, settings)


def run(args: argparse.Namespace) -> int:
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("secondlook demo binds to loopback only (127.0.0.1, localhost or ::1).", file=sys.stderr)  # noqa: T201
        return 2
    app_port = args.app_port or args.port + 1
    configure_logging("WARNING")
    if args.patients < 0:
        print("--patients must be 0 or more.", file=sys.stderr)  # noqa: T201
        return 2
    stack = build_demo(args.host, args.port, app_port, args.latency_ms, args.data_dir, args.patients)
    print(  # noqa: T201 - the one line a newcomer needs
        f"SecondLook demo: open http://{args.host}:{args.port}/ (demo EHR launch page); "
        f"the app runs at http://{args.host}:{app_port}/. Press Ctrl+C to stop.",
        flush=True,
    )
    if args.screen:
        demo_screen.start(stack.registration, stack.settings.database_url, args.data_dir / "screening")
    try:
        asyncio.run(serve_all([stack.ehr, stack.app]))
    except KeyboardInterrupt:
        pass
    return 0
