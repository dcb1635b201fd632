"""The demo stack: the demo EHR plus the SecondLook app wired to it (SMART launch registration,
Backend Services client, synthetic population), built in one place for `secondlook demo`, the
tests and the benchmarks. This module depends on the product; the product never imports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from joserfc.jwk import ECKey, RSAKey

from demo_ehr import DemoEhrConfig, create_demo_ehr
from demo_ehr.backend_auth import generate_backend_key
from demo_ehr.config import BackendClientConfig
from demo_ehr.records import DEMO_PRACTITIONER_ID
from launch.jwks import build_jwks
from launch.registry import Registration, Registry
from smartapp.config import Settings
from smartapp.servers import Served
from smartapp.web.app import create_app

DEMO_CLIENT_ID = "secondlook-demo"
# The app's SMART Backend Services client at the demo EHR (population screening, Bulk Data export).
DEMO_BACKEND_CLIENT_ID = "secondlook-demo-backend"
DEFAULT_PATIENTS = 200


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
    return Registry(
        [
            Registration.model_validate(
                {
                    "iss": f"{ehr_base}/fhir",
                    "display_name": "SecondLook demo EHR",
                    "client_id": DEMO_CLIENT_ID,
                    "client_auth": "public",
                    "frame_ancestors": [ehr_base],
                    "standalone": True,
                    "backend_services": backend,
                    # The demo EHR's signed-in user may open the referral worklist.
                    "worklist_users": [f"Practitioner/{DEMO_PRACTITIONER_ID}"],
                }
            )
        ]
    )


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
    # The encryption key is the development one in the user's config folder, not beside the database.
    settings = Settings(
        public_url=app_base, database_url=f"sqlite+aiosqlite:///{data_dir / 'secondlook-demo.db'}"
    )
    registry = demo_registry(ehr_base, generate_backend_key("ES384"))
    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=ehr_base,
            app_launch_url=f"{app_base}/launch",
            app_standalone_url=f"{app_base}/standalone",
            redirect_uris=[f"{app_base}/callback"],
            latency_ms=latency_ms,
            # the charts' stories ("surgery in 3 days") hold on the day the demo starts
            stories_on=date.today(),
            backend_clients=(demo_backend_client(registry),),
            synthetic_patients=patients,
        )
    )
    return DemoStack(
        Served(ehr, host, port), Served(create_app(settings, registry), host, app_port), registry, settings
    )
