"""``package.module:name`` references (custom reference methods, ASE calculator factories,
structure builders), resolved with the standard library's ``pkgutil.resolve_name``."""

from __future__ import annotations

import pkgutil
from typing import Any

from gmdbench.errors import GmdError


def resolve_dotted(reference: str, what: str, error_class: type[GmdError] = GmdError) -> Any:
    """The object ``reference`` names; an error naming ``what`` and the reference otherwise."""
    if ":" not in reference or not all(reference.partition(":")[::2]):
        raise error_class(f"{what} {reference!r} is not of the form package.module:name")
    try:
        return pkgutil.resolve_name(reference)
    except (ImportError, AttributeError, ValueError) as error:
        raise error_class(f"{what} {reference!r} cannot be imported: {error}") from error
