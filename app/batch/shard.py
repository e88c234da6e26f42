"""``--shard K/N``: the K-th of N deterministic parts of a batch's case list, for schedulers without Ray.

A SLURM array (or any scheduler) runs ``unetseg infer ... --shard $K/$N`` N times with the same inputs and OUT;
together the N runs cover every discovered case exactly once. A case belongs to shard
``1 + sha256(case_id) mod N``: stable under any order of discovery, and unchanged when other cases are added
to the archive. Each shard writes its own run report and journal (``report-shard-K-of-N.json``,
``journal-shard-K-of-N.jsonl``) into the shared OUT, so concurrent shards never write the same file; ``unetseg
report OUT`` joins them into one run report.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from app.errors import InputError

_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise InputError(None, f"shard must be K/N with 1 <= K <= N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> ``Shard(2, 3)``.

        Raises:
            InputError: not of the form K/N with 1 <= K <= N.
        """
        match = _PATTERN.match(text)
        if match is None:
            raise InputError(None, f"shard must be K/N, e.g. 2/3 (the second of three), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def takes(self, case_id: str) -> bool:
        """Whether ``case_id`` belongs to this shard."""
        digest = int.from_bytes(hashlib.sha256(case_id.encode("utf-8")).digest()[:8], "big")
        return digest % self.count == self.index - 1

    @property
    def suffix(self) -> str:
        """``"-shard-K-of-N"``, the part of this shard's report and journal file names."""
        return f"-shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
