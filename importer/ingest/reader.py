"""Reading an uploaded CSV: encoding, delimiter and header detection, and cutting the file into
chunks that end on row boundaries, so each chunk can be parsed alone and staging can resume
from a byte offset.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from importer.errors import InvalidInput

CHUNK_BYTES = 4 * 1024 * 1024
MAX_ROW_BYTES = 32 * 1024 * 1024
SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
REQUIRED = ("sku", "name")
ALIASES = {"sku": "sku", "name": "name", "description": "description", "is_active": "is_active", "active": "is_active"}
QUOTE, NEWLINE, CARRIAGE_RETURN = 0x22, 0x0A, 0x0D
_BINARY_SIGNATURES = (b"\x89PNG", b"%PDF", b"PK\x03\x04", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"\xd0\xcf\x11\xe0")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
UTF8_BOM = b"\xef\xbb\xbf"


class FileFault(InvalidInput):
    """The file as a whole cannot be imported; nothing from it is applied."""


class NotUtf8(Exception):
    """A chunk is not UTF-8 although the start of the file was: the file must be read as cp1252."""


@dataclass(frozen=True)
class CsvLayout:
    encoding: str
    delimiter: str
    columns: tuple[str, ...]
    positions: dict[str, int]
    ignored: tuple[str, ...]
    data_offset: int

    @property
    def has_active(self) -> bool:
        return "is_active" in self.positions


@dataclass
class ScanResult:
    """Where the last complete row ends in a buffer, and whether the buffer ends inside quotes."""

    end: int = -1
    quoted: bool = False


def field_starts(delimiter: str) -> bytes:
    """Bytes after which a quote opens a quoted field."""
    return delimiter.encode() + b"\n\r"


def scan_rows(data: bytes, starts: bytes, first: bool = False, final: bool = False) -> ScanResult:
    """Find the last (or first) line break outside quotes. Quotes open a field only at its start, as pandas reads them.

    `final`: the data ends the file, so a quote as its last byte closes a field (it cannot be half of `""`).
    """
    return (None if first else _scan_by_parity(data, starts)) or _scan_exactly(data, starts, first, final)


def outside_quotes(quotes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The positions with an even number of quotes before them: outside quoted values, by parity."""
    return positions[(np.searchsorted(quotes, positions) & 1) == 0]


def _scan_by_parity(data: bytes, starts: bytes) -> ScanResult | None:
    """scan_rows by counting quotes, in numpy: right when every quote that opens by parity is at the
    start of a field (no stray quote inside an unquoted value); None otherwise.
    """
    octets = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(octets == QUOTE)
    openings = quotes[0::2]
    openings = openings[openings > 0]
    if not np.isin(octets[openings - 1], np.frombuffer(starts, dtype=np.uint8)).all():
        return None
    outside = outside_quotes(quotes, np.flatnonzero(octets == NEWLINE))
    return ScanResult(end=int(outside[-1]) + 1 if len(outside) else -1, quoted=bool(len(quotes) & 1))


def _scan_exactly(data: bytes, starts: bytes, first: bool, final: bool) -> ScanResult:
    result = ScanResult()
    position, size = 0, len(data)
    while True:
        if result.quoted:
            closing = data.find(b'"', position)
            if closing < 0:
                return result
            if closing + 1 == size:
                result.quoted = not final
                return result
            if data[closing + 1] == QUOTE:
                position = closing + 2
                continue
            result.quoted, position = False, closing + 1
            continue
        opening = data.find(b'"', position)
        stop = size if opening < 0 else opening
        newline = (data.find if first else data.rfind)(b"\n", position, stop)
        if newline >= 0:
            result.end = newline + 1
            if first:
                return result
        if opening < 0:
            return result
        if opening == 0 or data[opening - 1] in starts:
            result.quoted = True
        position = opening + 1


def _check_text(head: bytes) -> None:
    if not head:
        raise FileFault("The file is empty.")
    if head.startswith(_UTF16_BOMS):
        raise FileFault("The file is UTF-16 text; save it as CSV in UTF-8 and upload it again.")
    if head.startswith(_BINARY_SIGNATURES) or b"\x00" in head:
        raise FileFault("The file is not a CSV text file (it looks like binary data).")


def _head_encoding(head: bytes, complete: bool) -> str:
    try:
        head.decode("utf-8") if complete else _decode_prefix(head)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _decode_prefix(data: bytes) -> str:
    """Decode a prefix that may end inside a multi-byte character."""
    return codecs.getincrementaldecoder("utf-8")().decode(data, final=False)


def decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-8":
            raise NotUtf8() from exc
        raise FileFault(f"The file is neither UTF-8 nor Windows-1252 text (it holds the byte "
                        f"0x{exc.object[exc.start]:02x}, which is no character in either).") from exc


def _pick_delimiter(header: str) -> str:
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _map_columns(columns: list[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, raw in enumerate(columns):
        target = ALIASES.get(raw.strip().lower())
        if target is None:
            ignored.append(raw.strip())
        elif target in positions:
            raise FileFault(f"The header names the column {target!r} twice.")
        else:
            positions[target] = index
    missing = [name for name in REQUIRED if name not in positions]
    if missing:
        found = ", ".join(repr(column.strip()) for column in columns) or "nothing"
        raise FileFault(f"The header has no {' and no '.join(repr(name) for name in missing)} column "
                        f"(found {found}); 'sku' and 'name' are required.")
    return positions, tuple(ignored)


def sniff(path: Path, encoding: str | None = None) -> CsvLayout:
    """Read the header. `encoding` forces one (a resumed import keeps what it started with)."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        complete = len(head) < SNIFF_BYTES
    _check_text(head)
    bom = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
    encoding = encoding or _head_encoding(head[bom:], complete)
    scan = scan_rows(head[bom:], field_starts("".join(DELIMITERS)), first=True)
    header_end = scan.end if scan.end > 0 else (len(head) - bom if complete else -1)
    if header_end < 0:
        raise FileFault("The first line is longer than 64 KB; this does not look like a CSV header.")
    header_text = decode(head[bom:bom + header_end], encoding).rstrip("\r\n")
    if not header_text.strip():
        raise FileFault("The first line is empty; it must hold the column names (sku, name, ...).")
    delimiter = _pick_delimiter(header_text)
    columns = next(csv.reader(io.StringIO(header_text, newline=""), delimiter=delimiter))
    positions, ignored = _map_columns(columns)
    return CsvLayout(encoding, delimiter, tuple(columns), positions, ignored, bom + header_end)


def as_utf8(data: bytes, encoding: str) -> bytes:
    """What pandas is given: the chunk as UTF-8, checked, so a bad byte fails here with a clear message."""
    text = decode(data, encoding)
    return data if encoding == "utf-8" else text.encode("utf-8")


def _row_start(data: bytes) -> str:
    """How a message points at a row when its number is not known yet: the row's first characters."""
    return f"{data[:60].decode('utf-8', 'replace')!r}"


def iter_chunks(path: Path, start: int, delimiter: str, chunk_bytes: int | None = None) -> Iterator[tuple[bytes, int]]:
    """Yield (rows, end offset) from `start`; every chunk holds whole rows only."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    starts = field_starts(delimiter)
    pending = b""
    offset = start
    with path.open("rb") as handle:
        handle.seek(start)
        while True:
            block = handle.read(chunk_bytes)
            if not block:
                break
            buffer = pending + block
            scan = scan_rows(buffer, starts)
            if scan.end <= 0:
                if len(buffer) > MAX_ROW_BYTES:
                    raise FileFault(f"The row that starts with {_row_start(buffer)} runs past {MAX_ROW_BYTES >> 20} MB: "
                                    "probably a quote that is never closed.")
                pending = buffer
                continue
            offset += scan.end
            pending = buffer[scan.end:]
            yield buffer[:scan.end], offset
    if pending:
        if scan_rows(pending, starts, final=True).quoted:
            raise FileFault(f"A quoted field in the row that starts with {_row_start(pending)} is never closed "
                            "(unterminated quote at the end of the file).")
        yield pending, offset + len(pending)
