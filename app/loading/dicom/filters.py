"""User rules that select DICOM series by attribute: ``Key=Value`` and ``Key~Regex``.

* ``Key`` is a DICOM keyword (``Modality``, ``SeriesDescription``, ``ImageType``, ``BodyPartExamined``, ...).
* ``Key=Value``: exact, case-insensitive, after stripping spaces; for multi-valued attributes it also matches
  any single value (``ImageType=AXIAL`` matches ``ORIGINAL\\PRIMARY\\AXIAL``).
* ``Key~Regex``: :func:`re.search`, case-insensitive (``SeriesDescription~t1`` matches ``Ax T1 MPRAGE``).
* A missing attribute is the empty string.

Filters on patient identifiers (``Patient*``, ``OtherPatient*``, ``AccessionNumber``) are refused: their values
would end up in decision records and logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydicom.datadict import tag_for_keyword

from app.errors import InputError

_PHI_KEYWORDS = ("Patient", "OtherPatient", "AccessionNumber", "ReferringPhysician", "IssuerOfPatient")
_SYNTAX = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*([=~])(.*)$", re.DOTALL)


@dataclass(frozen=True)
class SeriesFilter:
    """One selection rule; build with :meth:`parse`."""

    keyword: str
    op: Literal["=", "~"]
    value: str

    @classmethod
    def parse(cls, text: str) -> SeriesFilter:
        """Parse ``Key=Value`` or ``Key~Regex``.

        Raises:
            InputError: bad syntax, unknown keyword, a patient-identifier keyword, or an invalid regex.
        """
        match = _SYNTAX.match(text)
        if not match:
            raise InputError(
                None,
                f"series filter {text!r}: expected Key=Value or Key~Regex "
                "(e.g. Modality=MR, SeriesDescription~T1)",
            )
        keyword, op, value = match.group(1), match.group(2), match.group(3).strip()
        if tag_for_keyword(keyword) is None:
            raise InputError(None, f"series filter {text!r}: {keyword!r} is not a DICOM keyword")
        if keyword.startswith(_PHI_KEYWORDS):
            raise InputError(
                None,
                f"series filter {text!r}: filtering on patient identifiers is not supported "
                "(their values would appear in logs and reports)",
            )
        if op == "~":
            try:
                re.compile(value)
            except re.error as exc:
                raise InputError(None, f"series filter {text!r}: invalid regular expression: {exc}") from exc
        return cls(keyword=keyword, op="~" if op == "~" else "=", value=value)

    def matches(self, text: str) -> bool:
        """Whether an attribute value (multi-values joined with ``\\``) satisfies this rule."""
        text = text.strip()
        if self.op == "~":
            return re.search(self.value, text, flags=re.IGNORECASE) is not None
        wanted = self.value.casefold()
        return text.casefold() == wanted or any(
            part.strip().casefold() == wanted for part in text.split("\\")
        )

    def __str__(self) -> str:
        return f"{self.keyword}{self.op}{self.value}"


def parse_filters(filters: Iterable[str | SeriesFilter]) -> tuple[SeriesFilter, ...]:
    """Parse every rule (strings or already parsed)."""
    return tuple(f if isinstance(f, SeriesFilter) else SeriesFilter.parse(f) for f in filters)
