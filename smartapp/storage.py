"""The SQL metadata of the product's own tables (referral packets, CDS feedback, ...).
`launch` keeps its tables on its own metadata; the app creates both at start-up."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
