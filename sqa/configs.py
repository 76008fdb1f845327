"""Configs as plain data: dataclass <-> dict for YAML files, checkpoints and run folders.

The one (de)serialiser of the project: ``sqa train-predictor --config``, ``sqa finetune
--config``, the simulation settings of ``sqa simulate``/``simulate-systems``, ``config.yaml`` of
every run folder and the ``config`` entry of every checkpoint go through :func:`config_to_dict`
and :func:`config_from_dict`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from sqa.errors import ConfigError


def config_to_dict(config: Any) -> Any:
    """Convert a config (dataclass, mapping, namespace) to plain types.

    Nested dataclasses become dicts, tuples become lists, paths become strings and enums their
    values; :func:`config_from_dict` reverses it.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {
            field.name: config_to_dict(getattr(config, field.name))
            for field in dataclasses.fields(config)
        }
    if isinstance(config, types.SimpleNamespace) or hasattr(config, "_get_kwargs"):
        return {key: config_to_dict(value) for key, value in vars(config).items()}
    if isinstance(config, Mapping):
        return {str(key): config_to_dict(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return [config_to_dict(item) for item in config]
    if isinstance(config, enum.Enum):
        return config_to_dict(config.value)
    if isinstance(config, PurePath):
        return str(config)
    if isinstance(config, np.generic):
        return config.item()
    if config is None or isinstance(config, (bool, int, float, str)):
        return config
    raise ConfigError(f"cannot store a {type(config).__name__} in a config: {config!r}")


def config_from_dict(cls: Any, data: Any) -> Any:
    """Rebuild a config of type ``cls`` from :func:`config_to_dict` output.

    Nested dataclasses, tuples (from lists), ``X | None``, ``list[X]`` and ``dict[K, V]`` follow
    the type hints of ``cls``; fields missing from ``data`` keep their defaults.

    Raises:
        ConfigError: For unknown fields or missing required ones.
    """
    if data is None:
        return None
    origin = typing.get_origin(cls)
    arguments = typing.get_args(cls)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in arguments if option is not type(None)]
        return config_from_dict(options[0], data) if len(options) == 1 else data
    if origin is tuple and isinstance(data, (list, tuple)):
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(config_from_dict(arguments[0], item) for item in data)
        if arguments and len(arguments) == len(data):
            return tuple(
                config_from_dict(hint, item) for hint, item in zip(arguments, data, strict=True)
            )
        return tuple(data)
    if origin is list and isinstance(data, (list, tuple)):
        hint = arguments[0] if arguments else Any
        return [config_from_dict(hint, item) for item in data]
    if origin is dict and isinstance(data, Mapping):
        hint = arguments[1] if len(arguments) == 2 else Any
        return {key: config_from_dict(hint, value) for key, value in data.items()}
    if cls is tuple and isinstance(data, list):
        return tuple(data)
    if cls is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        return _dataclass_from_dict(cls, data)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return cls(data)
    if isinstance(cls, type) and issubclass(cls, dict) and isinstance(data, Mapping):
        return cls(data)
    return data


def _dataclass_from_dict(cls: type, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config for {cls.__name__} must be a mapping, got {data!r}")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):
        # A class defined inside a function cannot resolve its string annotations; use the
        # annotations that are already types and leave the rest unconverted.
        hints = {
            name: field.type for name, field in fields.items() if not isinstance(field.type, str)
        }
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown field(s) for {cls.__name__}: {', '.join(unknown)}")
    values = {name: config_from_dict(hints.get(name, Any), data[name]) for name in data}
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"cannot build {cls.__name__} from config: {error}") from None
