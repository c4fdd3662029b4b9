"""Tables leaving the service: CSV whose text cells a spreadsheet cannot run, and
Parquet with typed columns, both written a batch of rows at a time, so an export of any
length streams in bounded memory.

pyarrow (about 60 MB resident once loaded) is imported by the first Parquet writer, not
with this module: a process that never exports Parquet never carries it.

A :class:`Column` says what a column holds (text, number, integer, flag, instant) and its
unit; the CSV writer formats by it, the Parquet writer types the column by it (instants
as UTC milliseconds, numbers as float64), so a historian or a notebook reads the file
without guessing. Pure: bytes in memory, no I/O.
"""

from __future__ import annotations

import csv
import enum
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# A text cell that begins like a formula is run by a spreadsheet that opens the CSV;
# a leading apostrophe makes it text (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for None, ``true``/``false``, UTC instants with ``Z``, floats
    to 6 significant digits, text guarded against formulas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class Kind(enum.Enum):
    TEXT = "text"
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    TIME = "time"


def _arrow_types() -> dict[Kind, pa.DataType]:
    import pyarrow as pa

    return {
        Kind.TEXT: pa.string(),
        Kind.FLOAT: pa.float64(),
        Kind.INT: pa.int64(),
        Kind.BOOL: pa.bool_(),
        Kind.TIME: pa.timestamp("ms", tz="UTC"),
    }


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    unit: str = ""

    def value(self, raw: Any) -> Any:
        """The row's value as this column holds it (None stays None); a value of the
        wrong type is the caller's error, not something to guess at."""
        if raw is None:
            return None
        if self.kind is Kind.FLOAT:
            number = float(raw)
            return number if math.isfinite(number) else None
        if self.kind is Kind.INT:
            return int(raw)
        if self.kind is Kind.BOOL:
            return bool(raw)
        if self.kind is Kind.TIME:
            if isinstance(raw, str):
                raw = datetime.fromisoformat(raw)
            if not isinstance(raw, datetime) or raw.utcoffset() is None:
                raise ValueError(f"{self.name}: an instant with its time zone, got {raw!r}")
            return raw.astimezone(UTC)
        return str(raw)


Row = Mapping[str, Any]


class CsvWriter:
    """CSV, a header line first; each :meth:`rows` call returns its lines' bytes."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)

    def header(self) -> bytes:
        return self._lines([[c.name for c in self.columns]])

    def rows(self, rows: Sequence[Row]) -> bytes:
        return self._lines(
            [[csv_cell(c.value(row.get(c.name))) for c in self.columns] for row in rows]
        )

    def close(self) -> bytes:
        return b""

    @staticmethod
    def _lines(lines: list[list[str]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(lines)
        return out.getvalue().encode()


class _Sink:
    """A file that Parquet writes into and the caller drains: only the bytes not yet
    taken are held."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


# Rows per Parquet row group: the pages a stream hands over are gathered (as Arrow
# tables, compact) until this many, so the file does not pay a row group's fixed cost
# (its metadata, a compression frame per column) for every page of 1,000 rows.
ROW_GROUP_ROWS = 16_384


class ParquetWriter:
    """Parquet: the rows of :meth:`rows` calls gathered into row groups of about
    :data:`ROW_GROUP_ROWS`; the last group and the footer at :meth:`close`. The column
    units go into the schema's field metadata (``unit``)."""

    def __init__(self, columns: Sequence[Column]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._types = _arrow_types()
        self.columns = tuple(columns)
        self.schema = pa.schema(
            [
                pa.field(c.name, self._types[c.kind], metadata={"unit": c.unit} if c.unit else None)
                for c in self.columns
            ]
        )
        self._sink = _Sink()
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression="zstd")
        self._pending: list[Any] = []
        self._pending_rows = 0

    def header(self) -> bytes:
        return self._sink.take()

    def rows(self, rows: Sequence[Row]) -> bytes:
        if rows:
            pa = self._pa
            arrays = [
                pa.array([c.value(row.get(c.name)) for row in rows], type=self._types[c.kind])
                for c in self.columns
            ]
            self._pending.append(pa.Table.from_arrays(arrays, schema=self.schema))
            self._pending_rows += len(rows)
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._write_group()
        return self._sink.take()

    def _write_group(self) -> None:
        if self._pending:
            table = self._pa.concat_tables(self._pending)
            self._writer.write_table(table, row_group_size=table.num_rows)
        self._pending, self._pending_rows = [], 0

    def close(self) -> bytes:
        self._write_group()
        self._writer.close()
        return self._sink.take()


TableWriter = CsvWriter | ParquetWriter


def writer(fmt: str, columns: Sequence[Column]) -> TableWriter:
    """``csv`` or ``parquet``."""
    if fmt == "csv":
        return CsvWriter(columns)
    if fmt == "parquet":
        return ParquetWriter(columns)
    raise ValueError(f"no table format {fmt!r}")
