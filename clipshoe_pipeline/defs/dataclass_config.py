"""Run config that mirrors a library's config dataclass.

The libraries (curation, training) define their knobs once, as dataclasses with
defaults and validation; the Launchpad needs `dg.Config` classes. `mirror` builds
one from the dataclass — same fields, types and defaults, nested dataclasses as
nested sections — and `build()` turns the run config back into the dataclass, whose
own validation runs when the config is made, so a bad value is refused before the
run starts.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import dagster as dg
import pydantic

_MIRRORED: dict[type, type] = {}  # mirror class -> the dataclass it mirrors


class DataclassConfig(dg.Config):
    """Base of the classes `mirror` makes."""

    def build(self, **fixed: Any) -> Any:
        """The mirrored dataclass with these values (plus `fixed`, for excluded fields)."""
        values = {name: value.build() if isinstance(value, DataclassConfig) else value for name, value in self}
        return _MIRRORED[type(self)](**values, **fixed)

    @pydantic.model_validator(mode="after")
    def _valid_for_the_dataclass(self) -> DataclassConfig:
        self.build()
        return self


def mirror(dataclass_type: type, exclude: tuple[str, ...] = ()) -> type[DataclassConfig]:
    """A `dg.Config` class with the fields of `dataclass_type` but `exclude` (which the
    caller passes to `build` itself)."""
    hints = typing.get_type_hints(dataclass_type)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(dataclass_type):
        if not field.init or field.name in exclude:
            continue
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            section = mirror(kind)
            fields[field.name] = (section, section())
        elif field.default is not dataclasses.MISSING:
            fields[field.name] = (kind, field.default)
        elif field.default_factory is not dataclasses.MISSING:
            fields[field.name] = (kind, pydantic.Field(default_factory=field.default_factory))
        else:
            fields[field.name] = (kind, ...)
    config = pydantic.create_model(f"{dataclass_type.__name__}Fields", __base__=DataclassConfig,
                                   __doc__=dataclass_type.__doc__, __module__=dataclass_type.__module__, **fields)
    _MIRRORED[config] = dataclass_type
    return config
