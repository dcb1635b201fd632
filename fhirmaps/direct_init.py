"""A faster `__init__` for the frozen dataclasses a chart is mapped into.

A frozen dataclass's generated `__init__` sets each field through `object.__setattr__`, a call per
field: a Measurement (twelve fields) takes about 2 µs to make, four times an unfrozen one. A
Synthea-sized chart makes some 600 Codes, Sources, Measurements and CareActivities, a twentieth of
its screening time. `direct_init` gives such a class an `__init__` that writes the fields into the
instance's `__dict__` instead: the same parameters and defaults, the same instance, and the class
stays frozen (assigning to a field still raises FrozenInstanceError; only `__init__` changes).

It takes plain fields only (a default or a default factory, positional or keyword): a class with
`__post_init__`, `InitVar`, `init=False`, keyword-only fields or `__slots__` is refused at import.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")
_FACTORY = object()  # the default of a parameter whose field has a default factory


def direct_init(cls: type[T]) -> type[T]:
    """Class decorator, above `@dataclass(frozen=True)`."""
    params = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen:
        raise TypeError(f"direct_init is for frozen dataclasses; {cls.__name__} is not one")
    if hasattr(cls, "__post_init__") or "__slots__" in vars(cls):
        raise TypeError(f"direct_init takes plain fields only; {cls.__name__} has __post_init__ or __slots__")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    parameters, body = [], []
    own = list(inspect.signature(cls.__init__).parameters)[1:]
    if own != [field.name for field in fields(cls)]:  # an InitVar is a parameter but no field
        raise TypeError(f"direct_init takes plain fields only; {cls.__name__} has an InitVar")
    for field in fields(cls):
        name = field.name
        if not field.init or field.kw_only:
            raise TypeError(f"direct_init takes plain fields only; {cls.__name__}.{name} is not one")
        if field.default is not MISSING:
            namespace[f"_default_{name}"] = field.default
            parameters.append(f"{name}=_default_{name}")
        elif field.default_factory is not MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            parameters.append(f"{name}=_FACTORY")
            body.append(f"    if {name} is _FACTORY:\n        {name} = _factory_{name}()")
        else:
            parameters.append(name)
        body.append(f"    __values[{name!r}] = {name}")
    source = (
        f"def __init__(__instance, {', '.join(parameters)}):\n"
        "    __values = __instance.__dict__\n" + "\n".join(body or ["    pass"]) + "\n"
    )
    exec(source, namespace)  # noqa: S102 - code built above from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
