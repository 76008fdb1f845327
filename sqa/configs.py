"""Configs as plain data: dataclass <-> dict for YAML files, checkpoints and run folders.

The one (de)serialiser of the project: ``sqa train-predictor --config``, ``sqa finetune
--config``, the simulation settings of ``sqa simulate``/``simulate-systems``, ``config.yaml`` of
every run folder and the ``config`` entry of every checkpoint go through :func:`config_to_dict`
and :func:`config_from_dict`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
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
    if cls is float and isinstance(data, str):
        # YAML 1.1 reads ``1e-3`` (no dot) as a string; a number written so is still a number.
        with contextlib.suppress(ValueError):
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
    for name, value in values.items():
        _check_scalar(cls, name, hints.get(name, Any), value)
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"cannot build {cls.__name__} from config: {error}") from None


_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _check_scalar(cls: type, name: str, hint: Any, value: Any) -> None:
    """Refuse a value of the wrong type for a ``bool``/``int``/``float``/``str`` field.

    A wrong type would otherwise surface later as an exception deep inside the model (a config
    can come from any YAML file or checkpoint), so it is named here with its field.
    """
    options = [hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        if value is None:
            return
    if len(options) != 1 or options[0] not in _SCALARS:
        return
    expected = options[0]
    if expected is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif expected is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    else:
        fits = isinstance(value, expected)
    if not fits:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ConfigError(
            f"{cls.__name__}.{name} must be {_SCALARS[expected]}, got {type(value).__name__} "
            f"{shown}"
        )


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides (``--set``) as a nested mapping; values are YAML scalars.

    Dotted keys reach nested configs (``model.trunk.num_layers=4``); ``lr=1e-3`` is a float,
    ``tensorboard=true`` a bool, ``train=[a.jsonl,b.jsonl]`` a list.

    Example:
        >>> parse_overrides(["steps=200", "model.num_channels=16", "critic=predictor-default"])
        {'steps': 200, 'model': {'num_channels': 16}, 'critic': 'predictor-default'}

    Raises:
        ConfigError: An item without ``=``.
    """
    import yaml

    overrides: dict[str, Any] = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        *parents, leaf = key.strip().split(".")
        target = overrides
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return overrides


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; nested mappings are merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | os.PathLike[str] | None, cls: Any, overrides: Mapping[str, Any] | None = None
) -> Any:
    """The one way every trainer builds its config: YAML file, then overrides, then the class.

    Args:
        path: YAML file with fields of ``cls`` (``None``: the class defaults).
        cls: The config dataclass.
        overrides: Nested values applied on top (:func:`parse_overrides`, command-line flags).

    Raises:
        ConfigError: Unreadable YAML, a non-mapping, unknown fields or bad values (naming the file).
    """
    import yaml

    data: Any = {}
    where = str(path) if path else cls.__name__
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: cannot read the config: {error}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: the config must be a mapping")
    try:
        return config_from_dict(cls, merge(data, overrides or {}))
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
