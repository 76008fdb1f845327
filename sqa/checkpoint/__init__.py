"""The checkpoint format shared by every model of the suite.

A checkpoint is a ``torch.save`` of plain types only::

    {"format_version": 1, "kind": str, "config": dict, "state_dict": {name: Tensor},
     "metadata": dict, "training_state": dict}   # training_state: training checkpoints only

and is always read back with ``torch.load(..., weights_only=True)``, so a file can never run code.
``kind`` names a registered ``(ConfigClass, ModuleClass)`` pair; the module is rebuilt as
``ModuleClass(config_from_dict(ConfigClass, config))``. Model modules call :func:`register_model`
at import time and are found lazily through the entry-point group ``sqa.models`` (each entry
point's value is a module to import), so this module never names ``rankers`` or ``se_finetune``.

Release checkpoints are listed by name in ``checkpoints/manifest.json`` with their sha256, which
:func:`load_model` checks before loading (see ``checkpoints/README.md``).
"""

from sqa.checkpoint.files import (
    FORMAT_VERSION,
    REQUIRED_KEYS,
    build_model,
    export_release,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from sqa.checkpoint.manifest import (
    DIRECTORY_ENVIRONMENT_VARIABLE,
    MANIFEST_NAME,
    checkpoint_dir,
    file_sha256,
    read_manifest,
    resolve_checkpoint,
    update_manifest,
)
from sqa.checkpoint.registry import (
    ENTRY_POINT_GROUP,
    model_classes,
    register_model,
    registered_kinds,
)
from sqa.configs import config_from_dict, config_to_dict

__all__ = [
    "DIRECTORY_ENVIRONMENT_VARIABLE",
    "ENTRY_POINT_GROUP",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "REQUIRED_KEYS",
    "build_model",
    "checkpoint_dir",
    "config_from_dict",
    "config_to_dict",
    "export_release",
    "file_sha256",
    "load_checkpoint",
    "load_model",
    "model_classes",
    "read_manifest",
    "register_model",
    "registered_kinds",
    "resolve_checkpoint",
    "save_checkpoint",
    "update_manifest",
]
