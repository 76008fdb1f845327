"""Read foreign checkpoints (Lightning ``.ckpt``, ``torch.save`` zip files, plain pickles) without
running any code they carry.

The unpickler resolves no global by importing it. It rebuilds tensors itself from the archive's raw
storage bytes (the job of torch's ``_rebuild_tensor_v2`` / ``_rebuild_parameter``), keeps plain
containers, and turns every other class into a plain ``dict`` of its pickled state with the class
name under ``"__class__"``: such objects are only ever *allocated* by pickle (``NEWOBJ``), never
called. A pickle that asks to *call* anything else (``REDUCE`` on ``os.system``, ``eval``, a class
constructor, ...) is refused with a :class:`~sqa.errors.CheckpointError`; nothing it names runs.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import torch

from sqa.errors import CheckpointError

CLASS_KEY = "__class__"
STATE_KEY = "__state__"
ITEMS_KEY = "__items__"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first object of pre-1.6 torch.save files
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}
TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}


class _Refused(type):
    """Metaclass of stand-ins for unknown classes: calling one (pickle ``REDUCE``) is refused."""

    qualified: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise CheckpointError(
            f"refusing to call {cls.qualified} from the checkpoint: only tensors and plain "
            "containers are rebuilt, nothing in the file is executed"
        )


class _Opaque(dict, metaclass=_Refused):
    """An instance of an unknown class: a ``dict`` of its state, filled by pickle ``BUILD``."""

    qualified: ClassVar[str] = "unknown"

    def __new__(cls, *args: Any, **kwargs: Any) -> _Opaque:
        instance = dict.__new__(cls)
        dict.__setitem__(instance, CLASS_KEY, cls.qualified)
        return instance

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slots state)
        if isinstance(state, dict):
            self.update(state)
        else:
            self[STATE_KEY] = state

    def append(self, item: Any) -> None:
        self.setdefault(ITEMS_KEY, []).append(item)

    def extend(self, items: Any) -> None:
        self.setdefault(ITEMS_KEY, []).extend(items)


def _opaque_class(module: str, name: str) -> type:
    return _Refused(name, (_Opaque,), {"qualified": f"{module}.{name}"})


def plain(value: Any) -> Any:
    """Replace the ``_Opaque`` stand-ins inside ``value`` by plain dicts (recursively)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    return value


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(
    storage: torch.Tensor,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_: Any,
) -> torch.Tensor:
    try:
        return storage.as_strided(tuple(size), tuple(stride), int(offset)).clone()
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"a tensor does not fit its storage: {error}") from None


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    return data


def _rebuild_from_type(function: Any, _new_type: Any, arguments: tuple, _state: Any) -> Any:
    return function(*arguments)  # ``function`` went through find_class, so it is allowed


def _reconstructor(cls: Any, _base: Any, state: Any = None) -> Any:
    # Protocol 0/1 form of "allocate an instance of cls"; only stand-ins get allocated.
    if not (isinstance(cls, type) and issubclass(cls, _Opaque)):
        raise CheckpointError(f"refusing to reconstruct {cls!r} from the checkpoint")
    instance = cls.__new__(cls)
    if state is not None:
        instance.__setstate__(state)
    return instance


ALLOWED_CALLS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "set"): set,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves globals from :data:`ALLOWED_CALLS` or to refusing stand-ins.

    Args:
        stream: The pickle byte stream.
        storages: Zip archive storage reader ``key -> raw bytes`` (``None`` for plain pickles).
    """

    def __init__(self, stream: io.BufferedIOBase, storages: Any = None) -> None:
        super().__init__(stream)
        self._storages = storages
        self._loaded: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_CALLS:
            return ALLOWED_CALLS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if module == "torch" and name in TORCH_DTYPES:
            return getattr(torch, name)
        if module == "builtins" and name in {"object", "dict", "list", "tuple"}:
            return {"object": object, "dict": dict, "list": list, "tuple": tuple}[name]
        return _opaque_class(module, name)

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if self._storages is None or not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent object in the checkpoint: {pid!r}")
        _, storage_type, key, _location, numel = pid
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else torch.uint8
        if key not in self._loaded:
            raw = bytearray(self._storages(str(key)))
            element = torch.empty((), dtype=dtype).element_size()
            if len(raw) < int(numel) * element:
                raise CheckpointError(f"storage {key} of the checkpoint is truncated")
            flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            self._loaded[key] = flat[: int(numel)]
        return self._loaded[key]


def _zip_payload(archive: zipfile.ZipFile, source: Path) -> Any:
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("data.pkl")]
    if not pickles:
        raise CheckpointError(f"{source} is a zip file but not a torch checkpoint (no data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
        raise CheckpointError(f"{source}: big-endian checkpoints are not supported")

    def storage(key: str) -> bytes:
        return archive.read(f"{prefix}data/{key}")

    with archive.open(pickles[0]) as stream:
        return RestrictedUnpickler(io.BufferedReader(stream), storage).load()


def read_untrusted(path: str | os.PathLike[str]) -> Any:
    """Load a foreign checkpoint's object tree without executing anything from it.

    Args:
        path: A ``torch.save`` zip file (also Lightning ``.ckpt``) or a plain pickle.

    Returns:
        The object tree: tensors, plain containers and plain dicts for unknown objects.

    Raises:
        CheckpointError: For unreadable files, legacy torch files, or pickles that try to call
            anything besides the tensor rebuild functions.
    """
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"{source}: no such file")
    try:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                return plain(_zip_payload(archive, source))
        with source.open("rb") as stream:
            payload = RestrictedUnpickler(stream).load()
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, KeyError) as error:
        raise CheckpointError(f"{source} is not a readable checkpoint ({error})") from None
    if payload == LEGACY_MAGIC:
        raise CheckpointError(
            f"{source} uses the legacy (before torch 1.6) format: re-save it with a newer torch"
        )
    return plain(payload)
