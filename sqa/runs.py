"""Seeding, run metadata and resume plumbing: what is needed to repeat, trace and continue a run.

:func:`seed_everything` seeds every generator the suite uses; :func:`write_run_metadata` stores
the resolved config (``config.yaml``) and the environment (``environment.json``: versions,
platform, git commit) in a run folder. Checkpoints embed :func:`environment_info` too.
:func:`rng_state` / :func:`restore_rng_state` carry the generators through a checkpoint,
:func:`truncate_log` drops log rows a killed run wrote after its last checkpoint, and
:func:`run_lock` removes temporary files a killed writer left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sqa.errors import SqaError
from sqa.fileio import atomic_open

# Distributions whose versions change results; looked up without importing them.
TRACKED_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "soundfile",
    "soxr",
    "transformers",
    "onnxruntime",
    "pesq",
    "pystoi",
    "speechmos",
    "distillmos",
    "librosa",
)
_MAXIMUM_SEED = 2**32 - 1
# Test hook (see tests/test_resume.py): the process kills itself with SIGKILL once update N is
# logged and before its checkpoint is written, the worst moment for a resume.
KILL_AFTER_STEP_VARIABLE = "SQA_TEST_KILL_AFTER_STEP"


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    ``PYTHONHASHSEED`` is exported too, but it only affects child processes (e.g. data-loader
    workers started with spawn): the hash seed of the running interpreter is fixed at start-up.

    Args:
        seed: Integer in [0, 2**32 - 1] (NumPy's limit).
        deterministic: Also ask torch for deterministic kernels (slower; warns where none exist).

    Raises:
        SqaError: If the seed is not an integer in range.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SqaError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) <= _MAXIMUM_SEED:
        raise SqaError(f"seed must be in [0, {_MAXIMUM_SEED}], got {seed}")
    import torch

    value = int(seed)
    os.environ["PYTHONHASHSEED"] = str(value)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict[str, Any]:
    """States of Python's ``random``, NumPy's global generator and torch (CPU; CUDA when in use).

    Returns:
        A mapping a checkpoint can store (weights-only loadable); see :func:`restore_rng_state`.
    """
    import torch

    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": keys,
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back generator states saved by :func:`rng_state` (the CUDA ones where CUDA is in use)."""
    import torch

    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    saved = state["numpy"]
    keys = np.asarray(saved["keys"], dtype=np.uint32)
    np.random.set_state(
        ("MT19937", keys, saved["position"], saved["has_gauss"], saved["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def truncate_log(path: str | os.PathLike[str], step: int) -> None:
    """Keep the rows of a JSON-lines log whose ``step`` is at most ``step``.

    A run killed after its last checkpoint has logged steps it will train again when resumed;
    without this they would appear twice. A torn last line (killed mid-write) is dropped too.
    """
    log = Path(path)
    if not log.is_file():
        return
    kept = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a torn write is the last thing the killed run did
        if isinstance(row, dict) and int(row.get("step", 0)) > step:
            break
        kept.append(line + "\n")
    with atomic_open(log) as stream:
        stream.writelines(kept)


def kill_point(step: int) -> None:
    """Test hook: SIGKILL this process after update ``step`` if ``SQA_TEST_KILL_AFTER_STEP`` names
    it (tests of ``--resume`` use it instead of racing a timer)."""
    if os.environ.get(KILL_AFTER_STEP_VARIABLE) == str(step):
        os.kill(os.getpid(), signal.SIGKILL)


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _sqa_version() -> str | None:
    # From the installed distribution (the version's one place is pyproject.toml).
    try:
        return importlib_metadata.version("sqa-suite")
    except importlib_metadata.PackageNotFoundError:
        return None


def _git(arguments: list[str], folder: Path) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(folder), *arguments],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


def git_state(folder: Path | None = None) -> dict[str, Any]:
    """Commit and dirtiness of the source checkout of ``sqa`` (``None`` values when unknown).

    Only a repository whose top level is the folder holding the ``sqa`` package counts, so an
    installed copy inside some other repository (e.g. a virtualenv in a project) reports nothing.
    """
    # This file is sqa/runs.py, so parents[1] is the folder holding the sqa package.
    root = (folder or Path(__file__).resolve().parents[1]).resolve()
    unknown: dict[str, Any] = {"git_commit": None, "git_dirty": None}
    top_level = _git(["rev-parse", "--show-toplevel"], root)
    if top_level is None or Path(top_level).resolve() != root:
        return unknown
    commit = _git(["rev-parse", "HEAD"], root)
    status = _git(["status", "--porcelain", "--untracked-files=no"], root)
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def environment_info() -> dict[str, Any]:
    """Versions and platform of this run.

    Returns:
        ``python``, ``platform``, ``sqa``, ``torch``, ``numpy`` (strings), ``packages``
        (distribution -> version for the installed ones among :data:`TRACKED_PACKAGES`),
        ``git_commit`` (hex or ``None``) and ``git_dirty`` (bool or ``None``).
    """
    packages = _package_versions()
    torch_module = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqa": _sqa_version(),
        "torch": str(getattr(torch_module, "__version__", None) or packages.get("torch")),
        "numpy": np.__version__,
        "packages": packages,
        **git_state(),
    }


def write_run_metadata(run_dir: str | os.PathLike[str], config: Any) -> Path:
    """Write ``config.yaml`` (resolved config) and ``environment.json`` into a run folder.

    Both files are written atomically and replace earlier ones (a resumed run records the
    environment it resumed in).

    Args:
        run_dir: Run folder (created if needed).
        config: Dataclass, mapping or argparse namespace; nested dataclasses are expanded.

    Returns:
        The run folder.
    """
    from sqa.configs import config_to_dict

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    resolved = config_to_dict(config)
    with atomic_open(folder / "config.yaml") as stream:
        yaml.safe_dump(resolved, stream, sort_keys=False, allow_unicode=True)
    environment = {
        **environment_info(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
    }
    with atomic_open(folder / "environment.json") as stream:
        stream.write(json.dumps(environment, indent=2, ensure_ascii=False) + "\n")
    return folder


def _lock_holder(lock: Path) -> tuple[int, str] | None:
    """``(pid, host)`` written in a lock file, or ``None`` when it cannot be read."""
    try:
        pid, host = lock.read_text(encoding="utf-8").split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _holder_alive(holder: tuple[int, str] | None) -> bool:
    if holder is None:
        return False
    pid, host = holder
    if host != socket.gethostname():
        return True  # another machine's process cannot be checked: assume it still runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``folder/.lock`` while a job writes into a run folder.

    A second job on the same folder (say, a resumed run started while the first still trains)
    would interleave logs and overwrite checkpoints, so it is refused. A lock left behind by a
    process that no longer exists (a crash, ``kill -9``) is taken over.

    Yields:
        The lock file's path.

    Raises:
        SqaError: Another live process holds the folder.
    """
    lock = Path(folder) / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if _holder_alive(holder):
                raise SqaError(
                    f"{folder} is in use by process {holder[0]} on {holder[1]}; "  # type: ignore[index]
                    f"wait for it, or delete {lock} if that process is gone"
                ) from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(f"{os.getpid()} {socket.gethostname()}\n")
        break
    else:
        raise SqaError(f"could not lock {folder}")
    remove_stale_temporaries(lock.parent)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of atomic writes (``.NAME.*.tmp``) left in a run folder.

    Only called by the holder of the folder's lock: no live writer can own them then, so they
    are what a killed process was writing (a checkpoint cut short, never renamed into place).

    Returns:
        The files removed.
    """
    removed = []
    for path in sorted(folder.glob(".*.tmp")):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def check_resume(output_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to overwrite an earlier run silently (see ``sqa.commands.options``).

    Raises:
        SqaError: Both ``resume`` and ``force`` are set, or ``output_dir/last.pt`` exists and
            neither is.
    """
    if resume and force:
        raise SqaError("--resume continues a run and --force starts it over: give one of them")
    if (output_dir / "last.pt").exists() and not (resume or force):
        raise SqaError(
            f"{output_dir} holds a run (last.pt): pass --resume to continue it or --force to "
            "start over"
        )
