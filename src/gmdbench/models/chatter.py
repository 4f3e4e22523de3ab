"""Third-party models' chatter, sent to the debug log instead of the user's terminal.

Model libraries print and warn while they import and build: mace-torch prints that
cuequivariance is missing (at import, on stdout, which scripts parse), CHGNet prints its
parameter count, fairchem's PaiNN warns that ``jittable`` is deprecated. None of it is the
user's business, and one command's output must stay the harness's own lines (issue 27, item 8).
Warnings raised by gmd-bench's own code inside the block still reach the user.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def library_chatter(source: str) -> Iterator[None]:
    """Prints to stdout and warnings from other packages within the block go to the debug log
    (``source`` names who spoke); gmd-bench's own warnings are re-issued."""
    printed = io.StringIO()
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded, \
                contextlib.redirect_stdout(printed):
            warnings.simplefilter("always")
            try:
                yield
            finally:
                caught = list(recorded)
    finally:  # what was said before a failure is logged too
        for line in printed.getvalue().splitlines():
            if line.strip():
                log.debug("%s printed: %s", source, line)
        for warning in caught:
            if Path(warning.filename).resolve().is_relative_to(PACKAGE):
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)
            else:
                log.debug("%s warned (%s): %s", source, warning.category.__name__,
                          warning.message)
