"""Writes that a kill cannot tear, and reads of checkpoints that fail in one line.

A checkpoint, weights file or result JSON is written to a temporary file in the same folder,
flushed to disk (fsync) and renamed over the target: a reader (or a resumed run) sees the old
file or the new one, never half of one. A file that is unreadable all the same (written by
another tool, truncated by a full disk) or that belongs to another model is reported as one
line naming it and what to do.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from gmdbench.errors import CheckpointError, StorageError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed over it (after fsync) when the block ends
    without an error (on an error the target is left as it was)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
    except OSError as error:
        raise storage_error(error, path) from error
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        # mkstemp makes 0600; the file gets the mode a plain open() would give it (0644 under
        # the usual umask 022), so colleagues on a shared file system can read results
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        raise storage_error(error, path) from error
    finally:
        temporary.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask (read by setting it and setting it back: POSIX has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` that a kill cannot tear. A full disk surfaces from torch's writer as a
    RuntimeError ("file write failed"), not an OSError: it gets the same one line."""
    with atomic_path(path) as temporary:
        try:
            torch.save(obj, temporary)
        except RuntimeError as error:
            if "write" not in str(error).lower():
                raise
            raise StorageError(f"cannot write {path}: {' '.join(str(error).split())[:200]}; "
                               "the disk may be full; nothing already written was lost"
                               ) from error


def write_text(path: Path, text: str) -> None:
    """``Path.write_text`` that a kill cannot tear."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def write_bytes(path: Path, data: bytes) -> None:
    """``Path.write_bytes`` that a kill cannot tear."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def load_torch(path: Path, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)``; a torn or foreign file is one line naming it."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(f"{what} {path} is unreadable (torn by a kill or not written by "
                              f"gmd-bench: {type(error).__name__}); delete it and run the same "
                              "command again to redo that step") from error


def load_state(module: torch.nn.Module, state: dict, path: Path,
               loader: Callable[[dict], Any] | None = None) -> None:
    """``module.load_state_dict(state)``; weights of another architecture or size are one line
    naming the file, not hundreds of state-dict keys."""
    try:
        (loader or module.load_state_dict)(state)
    except (RuntimeError, KeyError, ValueError) as error:
        own = set(module.state_dict())
        theirs = set(state) if isinstance(state, dict) else set()
        raise CheckpointError(
            f"{path} holds weights of another model ({len(own - theirs)} of this model's "
            f"{len(own)} tensors missing, {len(theirs - own)} unexpected, or shapes differ); "
            "delete it, or use a new run folder (--runs) for this model") from error


def storage_error(error: OSError, path: Path) -> StorageError:
    """An OSError as one line naming the path (read-only folder, full disk, permissions)."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EDQUOT: "the disk quota is exceeded"}
    reason = reasons.get(error.errno, error.strerror or str(error))
    where = error.filename or path
    return StorageError(f"cannot write {where}: {reason}; nothing already written was lost")
