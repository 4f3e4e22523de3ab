"""Exceptions of gmd-bench.

Every error a user can cause derives from :class:`GmdError` and carries a message that names the
bad input, so the CLI can print it as one line and exit non-zero without a traceback.
"""


class GmdError(Exception):
    """Base class: an error caused by the user's input or environment, not a bug."""


class InvalidSmilesError(GmdError):
    """A SMILES string RDKit cannot parse or sanitise."""


class ConformerError(GmdError):
    """RDKit could not embed or optimise conformers of a molecule."""


class UnsupportedElementError(GmdError):
    """A reference method (or model) cannot treat an element of the input."""


class ReferenceMethodError(GmdError):
    """An unknown reference method name or an invalid option for one."""


class LabelError(GmdError):
    """A reference calculation failed for a frame (SCF not converged, non-finite output)."""


class CorruptDatasetError(GmdError):
    """A dataset file (SQLite database or extxyz) is unreadable, truncated or inconsistent."""


class DatasetMismatchError(GmdError):
    """An existing dataset was built with another task, preset, seed or reference method."""


class UnknownTaskError(GmdError):
    """A task name that is neither a built-in task nor a readable YAML file."""


class TaskSpecError(GmdError):
    """A task YAML that does not validate (unknown key, empty role, overlap, bad SMARTS)."""


class ConfigError(GmdError):
    """A preset, train config, run matrix or probe suite YAML that is missing, unreadable or
    does not validate."""


class ResultsStoreError(GmdError):
    """A results store (SQLite) that is unreadable or not a results store."""


class CheckpointError(GmdError):
    """A checkpoint or weights file that is torn (a kill during a write) or belongs to another
    model."""


class StorageError(GmdError):
    """A file that cannot be written: read-only folder, full disk, missing permissions."""


class DeviceError(GmdError):
    """A device (``--device``, ``--gpus``) that this machine does not have, or a misspelt one."""


class ClusterError(GmdError):
    """A cluster that cannot be reached or configured (dask-cuda, dask-jobqueue, SLURM)."""
