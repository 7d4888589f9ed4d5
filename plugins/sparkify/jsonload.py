"""Read Sparkify JSON the way Redshift's ``COPY … FORMAT AS JSON`` does, for the PostgreSQL path.

Redshift maps JSON to columns in one of three ways, and so does this module:

* ``'auto'``: an object's keys match column names exactly, case included (so camelCase keys
  such as ``userId`` match nothing in a lower-case table);
* ``'auto ignorecase'``: the same, ignoring case;
* a JSONPaths file: the n-th path fills the n-th column.

Values are converted as Redshift converts them: a JSON number going into a text column is stored
as its text (``66``, ``4.6``), ``""`` going into a numeric column is NULL, ``\\uXXXX`` escapes
become the real characters. Input is streamed: a file is read chunk by chunk and any number of
JSON objects may follow each other, one per line or pretty-printed, so memory does not grow with
the size of a file. Every error names the object and the line.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sparkify.errors import PermanentError

MAX_OBJECT_CHARS = 16 * 1024 * 1024
_WS = re.compile(r"[ \t\n\r]*")
_INT_TEXT = re.compile(r"^-?\d+$")
_INT_LIMITS = {"integer": 2**31, "bigint": 2**63, "smallint": 2**15}


class SourceDataError(PermanentError):
    """Input that cannot be loaded; the message names the S3 object and the line."""


class JsonNumber(str):
    """A JSON number kept as the text it was written with."""

    __slots__ = ()


_decoder = json.JSONDecoder(parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=JsonNumber)


@dataclass(frozen=True)
class Column:
    """A target column: its name, its SQL type family and, for text, its width in bytes."""

    name: str
    type: str  # integer, bigint, smallint, double precision, real, numeric, boolean, text
    max_bytes: int | None = None


def iter_json_objects(chunks: Iterable[bytes], source: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, object)`` for each JSON value in a stream of UTF-8 byte chunks."""
    decode = codecs.getincrementaldecoder("utf-8")("strict")
    buffer = ""
    line = 1  # line number at the start of `buffer`
    chunk_iter = iter(chunks)
    eof = False
    while True:
        if not eof:
            try:
                data = next(chunk_iter)
            except StopIteration:
                eof, data = True, b""
            try:
                buffer += decode.decode(data, final=eof)
            except UnicodeDecodeError as err:
                # err.object holds the bytes not yet decoded; count the lines before the bad one.
                where = line + buffer.count("\n") + bytes(err.object[: err.start]).count(b"\n")
                raise SourceDataError(f"{source}, line {where}: not UTF-8 ({err.reason})") from None
        pos = 0
        length = len(buffer)
        while True:
            ws_end = _WS.match(buffer, pos).end()
            line += buffer.count("\n", pos, ws_end)
            pos = ws_end
            if pos >= length:
                break
            try:
                obj, end = _decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as err:
                # An error at the very end of the buffer (or an open string) may be a chunk
                # boundary: read on. An error earlier stays an error whatever follows.
                if not eof and (err.pos >= length - 8 or err.msg.startswith("Unterminated string")):
                    break
                if eof and (err.pos >= length or err.msg.startswith("Unterminated string")):
                    # The input ends inside this object: the file was cut short.
                    raise SourceDataError(
                        f"{source}, line {line}: truncated JSON at the end of the object ({err.msg})"
                    ) from None
                err_line = line + buffer.count("\n", pos, err.pos)
                raise SourceDataError(f"{source}, line {err_line}: malformed JSON ({err.msg})") from None
            if end == length and not eof and not isinstance(obj, dict | list):
                break  # a bare number or literal may continue in the next chunk
            yield line, obj
            line += buffer.count("\n", pos, end)
            pos = end
        buffer = buffer[pos:]
        if len(buffer) > MAX_OBJECT_CHARS:
            raise SourceDataError(f"{source}, line {line}: a JSON object longer than {MAX_OBJECT_CHARS} characters")
        if eof:
            if buffer.strip():
                raise SourceDataError(f"{source}, line {line}: truncated JSON at the end of the object")
            return


_PATH_TOKEN = re.compile(
    r"""\[\s*'((?:[^'\\]|\\.)*)'\s*\]"""  # ['key']
    r"""|\[\s*"((?:[^"\\]|\\.)*)"\s*\]"""  # ["key"]
    r"""|\[\s*(\d+)\s*\]"""  # [0]
    r"""|\.([A-Za-z_$][\w$]*)"""  # .key
)


def parse_jsonpaths(document: bytes | str, source: str) -> list[tuple[str | int, ...]]:
    """Parse a Redshift JSONPaths file into a list of paths (tuples of keys and indexes)."""
    try:
        parsed = json.loads(document)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SourceDataError(f"{source}: the JSONPaths file is not valid JSON ({err})") from None
    paths = parsed.get("jsonpaths") if isinstance(parsed, dict) else None
    if not isinstance(paths, list) or not paths:
        raise SourceDataError(f"{source}: a JSONPaths file must be an object with a non-empty 'jsonpaths' list")
    result = []
    for number, path in enumerate(paths, start=1):
        if not isinstance(path, str) or not path.startswith("$"):
            raise SourceDataError(f"{source}: JSONPaths expression {number} ({path!r}) must start with '$'")
        steps: list[str | int] = []
        pos = 1
        while pos < len(path):
            match = _PATH_TOKEN.match(path, pos)
            if not match:
                raise SourceDataError(f"{source}: JSONPaths expression {number} ({path!r}) is not supported")
            quoted1, quoted2, index, dotted = match.groups()
            if index is not None:
                steps.append(int(index))
            else:
                key = quoted1 if quoted1 is not None else quoted2 if quoted2 is not None else dotted
                if "'" in key or "\\" in key:
                    raise SourceDataError(
                        f"{source}: JSONPaths expression {number} ({path!r}) has a key with ' or \\, refused on "
                        "both warehouses: the stand-in cannot match how Redshift's COPY reads one (json_format)"
                    )
                steps.append(key)
            pos = match.end()
        if not steps:
            raise SourceDataError(f"{source}: JSONPaths expression {number} ({path!r}) selects nothing")
        result.append(tuple(steps))
    return result


def _resolve(obj: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or step >= len(obj):
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[step] if isinstance(step, int) else obj.get(step)
        if obj is None:
            return None
    return obj


def make_extractor(
    columns: Sequence[Column], json_format: str, jsonpaths: list[tuple[str | int, ...]] | None, source: str
) -> Callable[[dict], list[Any]]:
    """Return a function that maps one JSON object to the raw values of ``columns``, in order."""
    names = [c.name for c in columns]
    if jsonpaths is not None:
        if len(jsonpaths) != len(columns):
            raise SourceDataError(
                f"{source}: the JSONPaths file has {len(jsonpaths)} expressions but the table takes "
                f"{len(columns)} columns ({', '.join(names)})"
            )
        return lambda obj: [_resolve(obj, p) for p in jsonpaths]
    if json_format == "auto":
        return lambda obj: [obj.get(n) for n in names]
    if json_format == "auto ignorecase":
        lowered = [n.lower() for n in names]

        def extract(obj: dict) -> list[Any]:
            folded = {k.lower(): v for k, v in obj.items()}
            return [folded.get(n) for n in lowered]

        return extract
    raise SourceDataError(f"json format {json_format!r} is not 'auto', 'auto ignorecase' or a JSONPaths file")


def convert(value: Any, column: Column) -> Any:
    """Convert one JSON value for ``column`` as Redshift's COPY does; raise ValueError if it can't."""
    if value is None:
        return None
    kind = column.type
    if kind in _INT_LIMITS:
        if isinstance(value, bool) or isinstance(value, dict | list):
            raise ValueError(f"{_show(value)} is not an integer")
        text = str(value).strip()
        if text == "":
            return None
        if not _INT_TEXT.match(text):
            raise ValueError(f"{_show(value)} is not an integer")
        number = int(text)
        limit = _INT_LIMITS[kind]
        if not -limit <= number < limit:
            raise ValueError(f"{text} is out of range for {kind}")
        return number
    if kind in ("double precision", "real", "numeric"):
        if isinstance(value, bool) or isinstance(value, dict | list):
            raise ValueError(f"{_show(value)} is not a number")
        text = str(value).strip()
        if text == "":
            return None
        try:
            float(text)
        except ValueError:
            raise ValueError(f"{_show(value)} is not a number") from None
        return text
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise ValueError(f"{_show(value)} is not a boolean")
    # text
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict | list):
        text = _dumps(value)
    else:
        text = str(value)
    if "\x00" in text:
        raise ValueError("text contains a NUL character")
    if column.max_bytes is not None and len(text) * 4 > column.max_bytes:
        size = len(text.encode("utf-8"))
        if size > column.max_bytes:
            raise ValueError(f"text of {size} bytes is longer than the column's {column.max_bytes}")
    return text


def _dumps(value: Any) -> str:
    """Compact JSON text of a parsed value, numbers written as they came (not as strings)."""
    if isinstance(value, JsonNumber):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + _dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _show(value: Any) -> str:
    text = _dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return '"' + text.replace('"', '""') + '"'


def encode_rows(
    objects: Iterable[tuple[int, Any]],
    columns: Sequence[Column],
    extract: Callable[[dict], list[Any]],
    source: str,
    extra: Sequence[str] = (),
    chunk_bytes: int = 1 << 20,
    counter: list[int] | None = None,
) -> Iterator[bytes]:
    """Turn JSON objects into PostgreSQL ``COPY … (FORMAT csv)`` chunks of about ``chunk_bytes``.

    ``extra`` values (the source key, say) are appended to every row. ``counter[0]`` is increased
    by the number of rows written.
    """
    tail = "".join("," + _csv_field(v) for v in extra) + "\n"
    parts: list[str] = []
    size = 0
    rows = 0
    for line, obj in objects:
        if not isinstance(obj, dict):
            raise SourceDataError(f"{source}, line {line}: expected a JSON object, found {_show(obj)}")
        raw = extract(obj)
        fields = []
        for value, column in zip(raw, columns, strict=True):
            try:
                fields.append(_csv_field(convert(value, column)))
            except ValueError as err:
                raise SourceDataError(f"{source}, line {line}: column {column.name}: {err}") from None
        row = ",".join(fields) + tail
        parts.append(row)
        size += len(row)
        rows += 1
        if size >= chunk_bytes:
            yield "".join(parts).encode("utf-8")
            parts, size = [], 0
    if counter is not None:
        counter[0] += rows
    if parts:
        yield "".join(parts).encode("utf-8")
