"""Names that become parts of file paths (a task's, a preset's, a matrix's, a study's, a probe
suite's): one safe word each, so `../../escape` or `a/b` can never write outside the folder
the name is placed in."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

SAFE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
SafeName = Annotated[str, Field(
    pattern=SAFE_NAME_PATTERN, max_length=100,
    description="one word of letters, digits and _ . + - (it becomes part of file names), "
                "starting with a letter or digit")]
