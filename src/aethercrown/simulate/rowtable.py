"""Column-stored rows: a Sequence of row dicts built on demand from numpy columns.

A million activity rows kept as dicts would take most of a gigabyte; kept as columns they take a
few tens of megabytes, and the loader materialises one batch of dicts at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

EPOCH = np.datetime64("1970-01-01T00:00:00", "s")
EPOCH_DAY = date(1970, 1, 1).toordinal()


def iso_seconds(seconds: NDArray[np.int64]) -> list[str | None]:
    """UTC epoch seconds → ISO-8601 strings ending in Z; negative sentinel (-1) → None."""
    stamps = np.datetime_as_string(EPOCH + seconds.astype("timedelta64[s]"), unit="s")
    return [
        None if s < 0 else f"{t}Z" for t, s in zip(stamps.tolist(), seconds.tolist(), strict=True)
    ]


def utc_times(seconds: NDArray[np.int64]) -> list[datetime | None]:
    """UTC epoch seconds → aware UTC datetimes (what validating ``iso_seconds``'s text gives);
    negative sentinel (-1) → None."""
    at = datetime.fromtimestamp
    return [None if s < 0 else at(s, UTC) for s in seconds.tolist()]


def iso_days(days: NDArray[np.int64]) -> list[str]:
    """Days since the epoch → YYYY-MM-DD."""
    return np.datetime_as_string(
        np.datetime64("1970-01-01", "D") + days.astype("timedelta64[D]"), unit="D"
    ).tolist()


@dataclass(frozen=True)
class Column:
    """How one field is stored: ``kind`` is value | timestamp | day | prefixed | constant."""

    kind: str
    data: Any = None
    prefix: str = ""
    width: int = 0

    def render(self, index: slice | NDArray[np.int64], typed: bool = False) -> list[Any]:
        """The values as a row carries them: timestamps and days as ISO text, or with
        ``typed`` as the values validation makes of that text (aware UTC datetimes, dates)."""
        if self.kind == "constant":
            n = len(range(*index.indices(1 << 62))) if isinstance(index, slice) else len(index)
            return [self.data] * n
        part = self.data[index]
        if self.kind == "timestamp":
            seconds = np.asarray(part, dtype=np.int64)
            return utc_times(seconds) if typed else iso_seconds(seconds)
        if self.kind == "day":
            days = np.asarray(part, dtype=np.int64)
            if typed:
                return [date.fromordinal(EPOCH_DAY + d) for d in days.tolist()]
            return iso_days(days)
        if self.kind == "prefixed":
            fmt = f"{self.prefix}{{:0{self.width}d}}"
            return [fmt.format(v) for v in np.asarray(part).tolist()]
        if isinstance(part, np.ndarray):
            return part.tolist()
        return list(part)


class RowTable(Sequence[dict[str, Any]]):
    """Rows of one kind: ``table[i]`` is a dict, ``table[a:b]`` a list of dicts."""

    def __init__(self, length: int, columns: dict[str, Column], drop_none: bool = True) -> None:
        self._length = length
        self.columns = columns
        # Optional fields left out of a row rather than sent as null, like a hand-written row.
        self._drop_none = drop_none

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return self._rows(slice(*index.indices(self._length)))
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        return self._rows(slice(index, index + 1))[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, self._length, 5000):
            yield from self._rows(slice(start, min(start + 5000, self._length)))

    def batches(self, size: int, *, typed: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Rows ``size`` at a time; ``typed``: times and days as values, not text (rows in the
        shape ``data.service.ingest_rows`` validates text into, for its ``trusted`` path)."""
        for start in range(0, self._length, size):
            yield self._rows(slice(start, min(start + size, self._length)), typed)

    def column(self, name: str) -> list[Any]:
        return self.columns[name].render(slice(0, self._length))

    def select(self, mask: NDArray[np.bool_]) -> RowTable:
        """The rows where ``mask`` holds, as a new table."""
        index = np.flatnonzero(mask)
        columns = {
            name: col if col.kind == "constant" else _take(col, index)
            for name, col in self.columns.items()
        }
        return RowTable(len(index), columns, self._drop_none)

    def _rows(self, index: slice, typed: bool = False) -> list[dict[str, Any]]:
        names = list(self.columns)
        values = [self.columns[n].render(index, typed) for n in names]
        rows = [dict(zip(names, vals, strict=True)) for vals in zip(*values, strict=True)]
        if self._drop_none:
            # Only columns holding a None in this batch need the per-row pass.
            sparse = [n for n, vals in zip(names, values, strict=True) if None in vals]
            for name in sparse:
                for row in rows:
                    if row[name] is None:
                        del row[name]
        return rows

    def fingerprint(self) -> str:
        """A digest of every value: equal digests mean equal rows."""
        digest = hashlib.sha256()
        for batch in self.batches(20_000):
            digest.update(repr(batch).encode())
        return digest.hexdigest()


def _take(col: Column, index: NDArray[np.int64]) -> Column:
    data = col.data
    taken = data[index] if isinstance(data, np.ndarray) else [data[i] for i in index.tolist()]
    return Column(col.kind, taken, col.prefix, col.width)


RowFactory = Callable[[], RowTable]
