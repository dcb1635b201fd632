"""What is validated when a record is read: the resource types the mapping reads, and in each only
the elements it reads plus the ones R4B requires (fhirmaps/codes/read_elements.json). Validation is
most of the engine's time; Claims, Immunizations and a lab's reference ranges are never used, so
their shape is not checked. A malformed element that *is* read is still a data issue naming it.

Everything that leaves SecondLook (the referral's FHIR document) is validated in full elsewhere
(`r4b.validation_problem` on the whole resource)."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhirmaps import codes
from fhirmaps.r4b import fingerprint, model_class, validate, validation_problem


@cache
def _kept(resource_type: str) -> frozenset[str] | None:
    """Elements validated for a type: read by the mapping or required by R4B (with their `_x`
    primitive extensions); None when the type is not scoped (validated whole)."""
    read = codes.load("read_elements")["elements"].get(resource_type)
    cls = model_class(resource_type)
    if read is None or cls is None:
        return None
    extra = {field.alias or name: field.json_schema_extra or {} for name, field in cls.model_fields.items()}
    required = {
        field.alias or name
        for name, field in cls.model_fields.items()
        if field.is_required() or extra[field.alias or name].get("element_required")  # type: ignore[union-attr]
    }
    # A choice read in one form is read in all (effectiveDateTime -> effectivePeriod, ...): the
    # mapping falls back from one to the next, and the corpus may never hold the later ones.
    groups = {extra[n].get("one_of_many") for n in read if n in extra} - {None}  # type: ignore[union-attr]
    choices = {n for n, e in extra.items() if e.get("one_of_many") in groups}  # type: ignore[union-attr]
    names = {"resourceType", "id", *read, *required, *choices}
    return frozenset(names | {f"_{n}" for n in names})


def scoped(resource: dict[str, Any], mapped: frozenset[str]) -> dict[str, Any] | None:
    """The part of `resource` to validate; None when its type is not one the mapping reads."""
    resource_type = str(resource.get("resourceType", ""))
    if resource_type not in mapped:
        return None
    kept = _kept(resource_type)
    if kept is None:
        return resource
    return {key: value for key, value in resource.items() if key in kept}


def read_problem(resource: dict[str, Any], mapped: frozenset[str]) -> str | None:
    """Validation for reading: the scoped part of the resource, or nothing for unmapped types."""
    part = scoped(resource, mapped)
    return None if part is None else validation_problem(part)


def check_read_batch(resources: list[dict[str, Any]], mapped: frozenset[str]) -> list[tuple[str, str | None]]:
    """`read_problem`'s answers for a batch, computed in another process (see r4b.remember)."""
    parts = [part for resource in resources if (part := scoped(resource, mapped)) is not None]
    return [(fingerprint(part), validate(part)) for part in parts]
