"""Embedded demo EHR: a SMART authorization server (Authlib) and a FHIR R4 endpoint over
synthetic fixture patients, started by `secondlook demo` and used by tests and benchmarks."""

from .app import create_demo_ehr
from .config import DemoEhrConfig

__all__ = ["DemoEhrConfig", "create_demo_ehr"]
