"""`direct_init` makes a frozen dataclass's instances without a call per field, and changes nothing
else: the same parameters, defaults and errors, equal instances, still frozen."""

from __future__ import annotations

import inspect
import pickle
from dataclasses import MISSING, FrozenInstanceError, InitVar, dataclass, field, fields, make_dataclass
from datetime import date

import pytest

from fhirmaps.direct_init import direct_init
from fhirmaps.elements import Code
from fhirmaps.narrative import Section
from fhirmaps.record import CareActivity, Measurement, Source
from fhirmaps.reports import Chunk


def _twin(name: str) -> type:
    """A frozen dataclass with required, defaulted and factory fields; each call makes a new one,
    so the plain twin and the decorated one cannot differ in their fields."""
    made = make_dataclass(
        name,
        [
            ("name", str),
            ("when", date | None),
            ("tags", tuple[str, ...], field(default=())),
            ("notes", list[str], field(default_factory=list)),
            ("count", int, field(default=0)),
        ],
        frozen=True,
    )
    made.__module__ = __name__  # found here again when an instance is unpickled
    return made


Plain = _twin("Plain")
Direct = direct_init(_twin("Direct"))


CALLS = [
    (("a", None), {}),
    (("a", date(2026, 3, 1), ("x",)), {}),
    (("a",), {"when": date(2026, 3, 1), "count": 3}),
    ((), {"count": 2, "notes": ["n"], "when": None, "name": "b"}),
    (("a", None, (), ["n"], 5), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_same_call_makes_the_same_instance(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    plain, direct = Plain(*args, **kwargs), Direct(*args, **kwargs)  # type: ignore[arg-type]
    assert repr(direct) == repr(plain).replace("Plain", "Direct", 1)
    assert [getattr(direct, f.name) for f in fields(Direct)] == [
        getattr(plain, f.name) for f in fields(Plain)
    ]
    assert direct == Direct(*args, **kwargs)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(direct)) == direct  # noqa: S301 - bytes this test made


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (("a",), {}),
        (("a", None), {"colour": "red"}),
        (("a", None, (), [], 0, "extra"), {}),
        (("a", None), {"name": "b"}),
    ],
)
def test_a_wrong_call_is_refused_as_the_dataclass_refuses_it(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        Plain(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Direct(*args, **kwargs)  # type: ignore[arg-type]


def test_the_instance_stays_frozen_and_each_gets_its_own_default_factory_value() -> None:
    first, second = Direct("a", None), Direct("b", None)
    with pytest.raises(FrozenInstanceError):
        first.name = "c"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del first.count  # type: ignore[misc]
    assert first.notes == [] and first.notes is not second.notes


@pytest.mark.parametrize("cls", [Code, Source, Measurement, CareActivity, Section, Chunk])
def test_the_mapped_types_keep_their_dataclass_parameters(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in parameters] == [f.name for f in fields(cls)]
    for parameter, declared in zip(parameters, fields(cls), strict=True):
        if declared.default is not MISSING:
            assert parameter.default == declared.default
        elif declared.default_factory is not MISSING:
            assert parameter.default is not inspect.Parameter.empty  # optional: the factory fills it
        else:
            assert parameter.default is inspect.Parameter.empty, parameter.name


def test_mapped_types_are_made_with_their_values() -> None:
    source = Source("Observation/o1", "Observation.valueQuantity", "Ki-67: 30 %", when=date(2026, 2, 1))
    assert (source.reference, source.path, source.text, source.section, source.title, source.when) == (
        "Observation/o1",
        "Observation.valueQuantity",
        "Ki-67: 30 %",
        "",
        "",
        date(2026, 2, 1),
    )
    code = Code("http://loinc.org", "85319-2")
    assert (code.system, code.code, code.display) == ("http://loinc.org", "85319-2", "")
    assert code < Code("http://loinc.org", "85320-0") and code == Code("http://loinc.org", "85319-2", "")
    assert {code, Code(system="http://loinc.org", code="85319-2")} == {code}


def _refused(make: object) -> None:
    with pytest.raises(TypeError, match="direct_init"):
        direct_init(make)  # type: ignore[arg-type]


def test_what_it_cannot_copy_exactly_is_refused_at_import() -> None:
    @dataclass
    class NotFrozen:
        a: int

    @dataclass(frozen=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        b: InitVar[int]

    @dataclass(frozen=True)
    class NotInInit:
        a: int
        b: int = field(default=0, init=False)

    @dataclass(frozen=True, kw_only=True)
    class KeywordOnly:
        a: int

    @dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    class NotADataclass:
        pass

    for make in (NotFrozen, PostInit, WithInitVar, NotInInit, KeywordOnly, Slotted, NotADataclass):
        _refused(make)
