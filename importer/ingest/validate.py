"""Turning one chunk of CSV rows into staged rows and row errors.

pandas' C parser reads the chunk; it pads short rows with empty strings, so field counts are
checked for the chunk as a whole (delimiters and line breaks outside quoted values) and a chunk
that does not add up is read again with the csv module, which reports every row's field count.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from pandas.errors import ParserError

from importer.ingest.reader import CARRIAGE_RETURN, NEWLINE, QUOTE, CsvLayout, outside_quotes
from importer.models import NAME_MAX, SKU_MAX

FIRST_DATA_ROW = 2  # the header is row 1, as a spreadsheet numbers them
MAX_ERROR_VALUE = 1000
TRUE_WORDS = {"true", "t", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "f", "no", "n", "0", "off"}
BOOLEAN_WORDS = {**{word: True for word in TRUE_WORDS}, **{word: False for word in FALSE_WORDS}}


@dataclass(frozen=True)
class RowError:
    row_number: int
    column: str
    value: str
    message: str


@dataclass(frozen=True)
class StagedRows:
    """Valid rows, column by column, in the order the staging tables take them."""

    rownum: list[int]
    sku: list[str]
    sku_key: list[str]
    name: list[str]
    description: list[str]
    is_active: list[bool | None]

    def __len__(self) -> int:
        return len(self.rownum)

    def columns(self) -> tuple[list, ...]:
        return self.rownum, self.sku, self.sku_key, self.name, self.description, self.is_active


@dataclass(frozen=True)
class VerbatimRows:
    """A chunk that PostgreSQL's own CSV parser reads exactly as pandas did, so it can be staged
    as it is (COPY .. CSV) instead of being rebuilt in Python: every row valid, SKUs and names
    already trimmed, SKUs ASCII (their SQL lower() is their casefold), only sku/name/description
    columns, quotes only around whole fields, one kind of line end.
    """

    data: bytes
    delimiter: str
    columns: tuple[str, ...]  # the staging column of each field, in file order
    first_rownum: int
    count: int


@dataclass
class ParsedChunk:
    """Valid rows ready to stage and what was wrong with the others."""

    rows: StagedRows
    records: int
    verbatim: VerbatimRows | None = None
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass
class _Records:
    """The well-formed records of a chunk as text columns, with their record index in the chunk."""

    frame: pd.DataFrame
    index: np.ndarray
    total: int
    errors: list[RowError] = field(default_factory=list)


class _Octets:
    """A chunk's bytes as numpy, with the quote positions its checks share, found once."""

    def __init__(self, data: bytes) -> None:
        self.octets = np.frombuffer(data, dtype=np.uint8)

    @cached_property
    def quotes(self) -> np.ndarray:
        return np.flatnonzero(self.octets == QUOTE)

    @cached_property
    def line_ends(self) -> np.ndarray:
        """Line feeds outside quotes."""
        return self.outside_quotes(NEWLINE)

    def outside_quotes(self, octet: int) -> np.ndarray:
        return outside_quotes(self.quotes, np.flatnonzero(self.octets == octet))


def _fields_per_row(scan: _Octets, delimiter: str) -> np.ndarray | None:
    """Fields in each line, counting only delimiters and line breaks outside quotes (by quote parity).

    None when a line is blank: the exact reader handles those. Stray quotes make the counts
    disagree with pandas' own totals, which sends the chunk to the exact reader too.
    """
    octets, line_ends = scan.octets, scan.line_ends
    if len(line_ends) == 0 or line_ends[-1] != len(octets) - 1:
        line_ends = np.append(line_ends, len(octets))
    starts = np.concatenate(([0], line_ends[:-1] + 1))
    lengths = line_ends - starts - ((line_ends > starts) & (octets[np.maximum(line_ends - 1, 0)] == CARRIAGE_RETURN))
    if (lengths <= 0).any():
        return None
    separators = scan.outside_quotes(ord(delimiter))
    return np.bincount(np.searchsorted(line_ends, separators), minlength=len(line_ends)) + 1


def _quoted_whole_fields(scan: _Octets, delimiter: str) -> bool:
    """Quotes open only at a field's start and close only at its end (or pair up as `""` inside),
    and line ends outside quotes are all CRLF or all LF: where pandas and COPY .. CSV read alike.
    """
    octets, quotes = scan.octets, scan.quotes
    if len(quotes) & 1:
        return False
    opening, closing = quotes[0::2], quotes[1::2]
    after_previous_closing = np.concatenate(([-1], closing[:-1] + 1))
    before = octets[np.maximum(opening - 1, 0)]
    opens_field = ((opening == 0) | (before == ord(delimiter)) | (before == NEWLINE)
                   | (opening == after_previous_closing))
    follower = octets[np.minimum(closing + 1, len(octets) - 1)]
    ends_field = ((closing + 1 == len(octets)) | (follower == ord(delimiter)) | (follower == NEWLINE)
                  | (follower == CARRIAGE_RETURN) | (closing + 1 == np.concatenate((opening[1:], [-1]))))
    if not (opens_field.all() and ends_field.all()):
        return False
    returns, newlines = scan.outside_quotes(CARRIAGE_RETURN), scan.line_ends
    crlf = (newlines > 0) & (octets[np.maximum(newlines - 1, 0)] == CARRIAGE_RETURN)
    return len(returns) == int(crlf.sum()) and (bool(crlf.all()) or not crlf.any())


def _read_fast(data: bytes, scan: _Octets, layout: CsvLayout) -> _Records | None:
    """pandas' C parser, when the chunk is plain: no NUL, no blank line, every row `width` fields."""
    width = len(layout.columns)
    if b"\x00" in data:
        return None
    fields = _fields_per_row(scan, layout.delimiter)
    if fields is None or (fields != width).any():
        return None
    names = [str(position) for position in range(width)]
    try:
        frame = pd.read_csv(io.BytesIO(data), header=None, names=names, dtype=str, keep_default_na=False,
                            na_filter=False, sep=layout.delimiter, quotechar='"', engine="c", encoding="utf-8",
                            skip_blank_lines=False)
    except ParserError:
        return None
    in_values = sum("".join(frame[name].tolist()).count(layout.delimiter) for name in names)
    if len(frame) != len(fields) or data.count(layout.delimiter.encode()) - in_values != len(frame) * (width - 1):
        return None
    return _Records(frame, np.arange(len(frame)), len(frame))


def _excerpt(values: list[str], delimiter: str) -> str:
    return delimiter.join(values)[:MAX_ERROR_VALUE]


def _read_exact(data: bytes, layout: CsvLayout, first_record: int) -> _Records:
    width = len(layout.columns)
    good: list[list[str]] = []
    index: list[int] = []
    errors: list[RowError] = []
    total = 0
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=layout.delimiter)
    for total, values in enumerate(reader, start=1):
        if not values:
            continue
        if len(values) == width:
            good.append(values)
            index.append(total - 1)
        else:
            errors.append(RowError(first_record + total - 1 + FIRST_DATA_ROW, "", _excerpt(values, layout.delimiter),
                                   f"Wrong number of fields: expected {width}, found {len(values)}."))
    frame = pd.DataFrame(good, columns=[str(position) for position in range(width)], dtype=object)
    return _Records(frame, np.asarray(index, dtype=np.int64), total, errors)


def _column(records: _Records, layout: CsvLayout, name: str) -> list[str]:
    return records.frame[str(layout.positions[name])].tolist()


def _lengths(values: list[str]) -> np.ndarray:
    return np.fromiter(map(len, values), dtype=np.int64, count=len(values))


def _checks(records: _Records, layout: CsvLayout, has_nul: bool) -> tuple[dict[str, list], list[tuple]]:
    """The cleaned columns and (mask, column, values, message builder) for each rule.

    Plain lists and numpy: at 500k rows this is several times cheaper than pandas' .str methods.
    """
    sku = [value.strip() for value in _column(records, layout, "sku")]
    name = [value.strip() for value in _column(records, layout, "name")]
    sku_length, name_length = _lengths(sku), _lengths(name)
    columns: dict[str, list] = {"sku": sku, "name": name}
    rules: list[tuple] = [
        (sku_length == 0, "sku", sku, lambda value: "SKU is empty."),
        (sku_length > SKU_MAX, "sku", sku, lambda value: f"SKU is {len(value)} characters long; the limit is {SKU_MAX}."),
        (name_length == 0, "name", name, lambda value: "Name is empty."),
        (name_length > NAME_MAX, "name", name,
         lambda value: f"Name is {len(value)} characters long; the limit is {NAME_MAX}."),
    ]
    if "description" in layout.positions:
        columns["description"] = _column(records, layout, "description")
    if layout.has_active:
        raw = _column(records, layout, "is_active")
        active = [BOOLEAN_WORDS.get(value.strip().lower()) for value in raw]
        columns["is_active"] = active
        rules.append((np.fromiter((value is None for value in active), dtype=bool, count=len(active)), "is_active",
                      raw, lambda value: f"is_active must be true or false (or yes/no, 1/0); got {value!r}."))
    if has_nul:
        for column in layout.positions:
            raw = _column(records, layout, column)
            rules.append((np.array(["\x00" in value for value in raw], dtype=bool), column,
                          [value.replace("\x00", "\\0") for value in raw],
                          lambda value: "Contains a NUL character, which no text column can hold."))
    return columns, rules


def _errors(rules: list[tuple], row_numbers: np.ndarray) -> tuple[np.ndarray, list[RowError]]:
    bad = np.zeros(len(row_numbers), dtype=bool)
    errors: list[RowError] = []
    for mask, column, values, message in rules:
        hits = np.flatnonzero(mask)
        bad[hits] = True
        errors.extend(RowError(int(row_numbers[hit]), column, values[hit][:MAX_ERROR_VALUE], message(values[hit]))
                      for hit in hits)
    return bad, errors


def _take(values: list, keep: np.ndarray) -> list:
    return values if len(keep) == len(values) else [values[index] for index in keep]


def _verbatim(data: bytes, scan: _Octets, layout: CsvLayout, records: _Records, columns: dict[str, list],
              first_record: int) -> VerbatimRows | None:
    if layout.ignored or layout.has_active:
        return None
    sku, name = columns["sku"], columns["name"]
    if sku != _column(records, layout, "sku") or name != _column(records, layout, "name"):
        return None
    if not "".join(sku).isascii() or not _quoted_whole_fields(scan, layout.delimiter):
        return None
    in_file_order = tuple(sorted(layout.positions, key=layout.positions.__getitem__))
    return VerbatimRows(data, layout.delimiter, in_file_order, first_record, records.total)


def parse_chunk(data: bytes, layout: CsvLayout, first_record: int, verbatim_ok: bool = False) -> ParsedChunk:
    """`data` is UTF-8 holding whole rows; `first_record` is the file-wide index of its first record.

    `verbatim_ok`: the backend can stage VerbatimRows, so say when the chunk qualifies.
    """
    scan = _Octets(data)
    fast = _read_fast(data, scan, layout)
    records = fast or _read_exact(data, layout, first_record)
    rownums = records.index + first_record
    columns, rules = _checks(records, layout, b"\x00" in data)
    bad, errors = _errors(rules, rownums + FIRST_DATA_ROW)
    keep = np.flatnonzero(~bad)
    sku = _take(columns["sku"], keep)
    rows = StagedRows(
        rownum=rownums[keep].tolist(),
        sku=sku,
        sku_key=[value.casefold() for value in sku],
        name=_take(columns["name"], keep),
        description=_take(columns["description"], keep) if "description" in columns else [""] * len(keep),
        is_active=_take(columns["is_active"], keep) if "is_active" in columns else [None] * len(keep),
    )
    errors = sorted(records.errors + errors, key=lambda error: error.row_number)
    failed = len(records.errors) + int(bad.sum())
    verbatim = (_verbatim(data, scan, layout, records, columns, first_record)
                if verbatim_ok and fast and not failed else None)
    return ParsedChunk(rows=rows, records=records.total, failed=failed, errors=errors, verbatim=verbatim)
