"""sparkify.jsonload: the PostgreSQL path's stand-in for Redshift's ``COPY … FORMAT AS JSON``."""

from __future__ import annotations

import csv
import io
import json

import pytest

from sparkify.jsonload import (
    Column,
    JsonNumber,
    SourceDataError,
    convert,
    encode_rows,
    iter_json_objects,
    make_extractor,
    parse_jsonpaths,
)

SOURCE = "s3://bucket/log_data/2018/11/2018-11-04-events.json"

# Everything a chunk boundary can cut through: multi-byte UTF-8 (2 and 4 bytes), \uXXXX escapes
# and a surrogate pair, escaped quotes and backslashes, numbers and literals at the end of a line,
# a pretty-printed object, blank lines, CRLF, and a last line without a newline.
SAMPLE = (
    '{"a": "Montr\\u00e9al", "b": 66, "c": 4.6, "d": true}\n'
    '{"a": "Zoë 😀", "b": -12, "c": 1.5e3, "d": null, "e": "say \\"hi\\" \\\\ \\ud83d\\ude00"}\r\n'
    "\n"
    '{\n  "a": "pretty",\n  "b": [1, 2, {"x": false}],\n  "c": 1540306145796.0\n}\n'
    '{"a": "", "b": 12345678901234, "c": 0}'
).encode()

SAMPLE_EXPECTED = [
    (1, {"a": "Montréal", "b": "66", "c": "4.6", "d": True}),
    (2, {"a": "Zoë 😀", "b": "-12", "c": "1.5e3", "d": None, "e": 'say "hi" \\ 😀'}),
    (4, {"a": "pretty", "b": ["1", "2", {"x": False}], "c": "1540306145796.0"}),
    (9, {"a": "", "b": "12345678901234", "c": "0"}),
]


def parse(data: bytes | list[bytes], source: str = SOURCE) -> list[tuple[int, object]]:
    chunks = [data] if isinstance(data, bytes) else data
    return list(iter_json_objects(chunks, source))


def error_of(data: bytes | list[bytes], source: str = SOURCE) -> str:
    with pytest.raises(SourceDataError) as info:
        parse(data, source)
    return str(info.value)


# -- streaming parse ---------------------------------------------------------------------------------


def test_one_chunk_gives_every_object_with_its_first_line():
    assert parse(SAMPLE) == SAMPLE_EXPECTED


def test_numbers_are_kept_as_the_text_they_were_written_with():
    ((_, obj),) = parse(b'{"t": 66, "f": 4.60, "e": 1E12, "n": -0.0}')
    assert obj == {"t": "66", "f": "4.60", "e": "1E12", "n": "-0.0"}
    assert all(isinstance(v, JsonNumber) for v in obj.values())


def test_split_at_every_byte_position_gives_the_same_objects():
    for cut in range(len(SAMPLE) + 1):
        assert parse([SAMPLE[:cut], SAMPLE[cut:]]) == SAMPLE_EXPECTED, f"split at byte {cut}"


def test_one_byte_chunks_give_the_same_objects():
    assert parse([SAMPLE[i : i + 1] for i in range(len(SAMPLE))]) == SAMPLE_EXPECTED


def test_three_way_splits_give_the_same_objects():
    step = 7
    for first in range(0, len(SAMPLE), step):
        for second in range(first, len(SAMPLE), step):
            chunks = [SAMPLE[:first], SAMPLE[first:second], SAMPLE[second:]]
            assert parse(chunks) == SAMPLE_EXPECTED, f"split at {first} and {second}"


def test_empty_chunks_are_harmless():
    assert parse([b"", SAMPLE[:10], b"", SAMPLE[10:], b""]) == SAMPLE_EXPECTED


def test_ndjson_without_trailing_newline_yields_the_last_object():
    data = b'{"n": 1}\n{"n": 2}'
    assert parse(data) == [(1, {"n": "1"}), (2, {"n": "2"})]
    assert parse([data[:-1], data[-1:]]) == [(1, {"n": "1"}), (2, {"n": "2"})]
    assert parse(data + b"\n") == parse(data)


def test_pretty_printed_objects_follow_each_other():
    data = b'{\n  "a": 1,\n  "b": {\n    "c": "x"\n  }\n}\n{\n  "a": 2\n}\n\n\n{"a": 3}'
    assert parse(data) == [(1, {"a": "1", "b": {"c": "x"}}), (7, {"a": "2"}), (12, {"a": "3"})]


def test_unicode_escapes_become_real_characters():
    ((_, obj),) = parse(b'{"name": "Bj\\u00f6rk", "city": "Montr\\u00e9al", "emoji": "\\ud83c\\udfb5"}')
    assert obj == {"name": "Björk", "city": "Montréal", "emoji": "🎵"}


def test_empty_input_gives_nothing():
    assert parse(b"") == []
    assert parse(b"  \n\n ") == []


# -- errors name the object and the line ------------------------------------------------------------


def test_malformed_line_names_object_and_line():
    data = b'{"a": 1}\n{"a": 2}\n{"a": 3,, "b": 4}\n{"a": 5}'
    message = error_of(data)
    assert message.startswith(f"{SOURCE}, line 3: malformed JSON")


def test_malformed_line_number_is_right_wherever_the_chunks_end():
    data = b'{"a": 1}\n{\n  "b": 2\n}\n{"a": 3}\n{"a": tru}\n{"a": 5}'
    for cut in range(len(data) + 1):
        assert error_of([data[:cut], data[cut:]]).startswith(f"{SOURCE}, line 6: malformed JSON"), cut


def test_malformed_text_after_an_object_on_the_same_line():
    assert error_of(b'{"a": 1}\n{"a": 2} x\n').startswith(f"{SOURCE}, line 2: malformed JSON")


def test_raw_newline_inside_a_string_is_malformed_at_its_line():
    assert error_of(b'{"a": 1}\n{"a": "broken\n"}\n{"a": 3}').startswith(f"{SOURCE}, line 2: malformed JSON")


def test_truncated_file_names_the_object_line_and_says_truncated():
    for data in (b'{"a": 1}\n{"a": 2, "b": ', b'{"a": 1}\n{"a": "unfinished str', b'{"a": 1}\n{"a": [1, 2'):
        message = error_of(data)
        assert message.startswith(f"{SOURCE}, line 2: "), message
        assert "truncated" in message, message


def test_truncated_file_in_chunks():
    data = b'{"a": 1}\n{\n  "a": 2,\n  "b": {"c": '
    for cut in range(len(data) + 1):
        message = error_of([data[:cut], data[cut:]])
        assert message.startswith(f"{SOURCE}, line 2: ") and "truncated" in message, (cut, message)


def test_invalid_utf8_names_the_object_and_line():
    message = error_of(b'{"a": 1}\n{"a": "\xff"}')
    assert message.startswith(f"{SOURCE}, line 2: not UTF-8")


# -- JSON to columns -------------------------------------------------------------------------------


COLUMNS = [Column("userid", "text", 64), Column("iteminsession", "integer"), Column("length", "double precision")]


def test_auto_is_case_sensitive():
    extract = make_extractor(COLUMNS, "auto", None, SOURCE)
    assert extract({"userId": "5", "itemInSession": "1", "length": "2.5"}) == [None, None, "2.5"]
    assert extract({"userid": "5", "iteminsession": "1"}) == ["5", "1", None]


def test_auto_ignorecase_matches_camel_case_keys():
    extract = make_extractor(COLUMNS, "auto ignorecase", None, SOURCE)
    assert extract({"userId": "5", "itemInSession": "1", "LENGTH": "2.5", "other": 1}) == ["5", "1", "2.5"]


def test_jsonpaths_fill_columns_by_position():
    paths = parse_jsonpaths(
        json.dumps({"jsonpaths": ["$['itemInSession']", "$.song.title", '$["tags"][1]']}), "s3://b/paths.json"
    )
    assert paths == [("itemInSession",), ("song", "title"), ("tags", 1)]
    columns = [Column("first", "text"), Column("second", "text"), Column("third", "text")]
    extract = make_extractor(columns, "s3://b/paths.json", paths, SOURCE)
    obj = {"itemInSession": "3", "song": {"title": "T"}, "tags": ["x", "y"], "first": "ignored"}
    assert extract(obj) == ["3", "T", "y"]
    assert extract({"song": None, "tags": ["only"]}) == [None, None, None]


def test_jsonpaths_count_must_match_the_columns():
    paths = parse_jsonpaths('{"jsonpaths": ["$.a", "$.b"]}', "s3://b/paths.json")
    with pytest.raises(SourceDataError) as info:
        make_extractor(COLUMNS, "s3://b/paths.json", paths, "s3://b/paths.json")
    message = str(info.value)
    assert "2 expressions" in message and "3 columns" in message and "userid, iteminsession, length" in message


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"paths": ["$.a"]}', "'jsonpaths' list"),
        ('{"jsonpaths": []}', "'jsonpaths' list"),
        ('{"jsonpaths": ["a.b"]}', "expression 1 ('a.b') must start with '$'"),
        ('{"jsonpaths": ["$.a", "$..b"]}', "expression 2 ('$..b') is not supported"),
        ('{"jsonpaths": ["$"]}', "selects nothing"),
    ],
)
def test_bad_jsonpaths_file_is_named(document, needle):
    with pytest.raises(SourceDataError) as info:
        parse_jsonpaths(document, "s3://b/paths.json")
    assert str(info.value).startswith("s3://b/paths.json: ") and needle in str(info.value)


@pytest.mark.parametrize("path", ["$['it\\'s']", '$["it\'s"]', "$['a\\\\b']", '$["a\\\\b"]'])
def test_a_jsonpaths_key_with_a_quote_or_backslash_is_refused(path):
    with pytest.raises(SourceDataError) as info:
        parse_jsonpaths(json.dumps({"jsonpaths": ["$.a", path]}), "s3://b/paths.json")
    assert str(info.value) == (
        f"s3://b/paths.json: JSONPaths expression 2 ({path!r}) has a key with ' or \\, refused on both warehouses: "
        "the stand-in cannot match how Redshift's COPY reads one (json_format)")


def test_unknown_json_format():
    with pytest.raises(SourceDataError, match="'bogus' is not 'auto'"):
        make_extractor(COLUMNS, "bogus", None, SOURCE)


# -- value conversion, as Redshift's COPY ----------------------------------------------------------------


def test_numbers_into_text_columns_keep_their_text():
    text = Column("title", "text", 256)
    assert convert(JsonNumber("66"), text) == "66"
    assert convert(JsonNumber("4.6"), text) == "4.6"
    assert convert(JsonNumber("4.60"), text) == "4.60"
    assert convert(True, text) == "true"
    assert convert({"k": ["v", JsonNumber("1")]}, text) == '{"k":["v",1]}'


def test_empty_string_into_numbers_is_null():
    for kind in ("integer", "bigint", "smallint", "double precision", "numeric"):
        assert convert("", Column("n", kind)) is None
        assert convert("  ", Column("n", kind)) is None
    assert convert("", Column("t", "text")) == ""


def test_integers():
    integer = Column("n", "integer")
    assert convert(JsonNumber("42"), integer) == 42
    assert convert(" 7 ", integer) == 7
    assert convert("-3", integer) == -3
    assert convert(JsonNumber("1541290555796"), Column("ts", "bigint")) == 1541290555796
    with pytest.raises(ValueError, match="out of range for integer"):
        convert(JsonNumber("2147483648"), integer)
    for bad in ("abc", JsonNumber("4.5"), True, [1], "1e3"):
        with pytest.raises(ValueError, match="is not an integer"):
            convert(bad, integer)


def test_doubles_keep_their_text_and_reject_non_numbers():
    double = Column("length", "double precision")
    assert convert(JsonNumber("214.20363"), double) == "214.20363"
    assert convert("1.5", double) == "1.5"
    with pytest.raises(ValueError, match='"abc" is not a number'):
        convert("abc", double)


def test_text_limits():
    with pytest.raises(ValueError, match="NUL"):
        convert("a\x00b", Column("t", "text"))
    with pytest.raises(ValueError, match="text of 6 bytes is longer than the column's 5"):
        convert("ééé", Column("t", "text", 5))
    assert convert("éé", Column("t", "text", 4)) == "éé"


def read_csv(chunks: list[bytes]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8"), newline="")))


def test_encode_rows_writes_postgres_csv():
    columns = [Column("title", "text", 1024), Column("year", "integer"), Column("duration", "double precision"),
               Column("artist", "text", 1024)]
    data = (b'{"title": "He said \\"hi\\",\\nthen left", "year": 0, "duration": 1.5, "artist": null}\n'
            b'{"title": 66, "year": "", "duration": "", "artist": ""}')
    counter = [0]
    chunks = list(encode_rows(parse(data), columns, make_extractor(columns, "auto", None, SOURCE), SOURCE,
                              extra=("the/key.json",), counter=counter))
    text = b"".join(chunks).decode()
    # NULL is an empty unquoted field; the empty string is a quoted empty field.
    assert text == '"He said ""hi"",\nthen left",0,"1.5",,"the/key.json"\n"66",,,"","the/key.json"\n'
    assert read_csv(chunks)[1] == ["66", "", "", "", "the/key.json"]
    assert counter == [2]


def test_encode_rows_chunks_by_size():
    columns = [Column("n", "integer")]
    data = "\n".join(f'{{"n": {i}}}' for i in range(100)).encode()
    chunks = list(encode_rows(parse(data), columns, make_extractor(columns, "auto", None, SOURCE), SOURCE,
                              chunk_bytes=50))
    assert len(chunks) > 5
    assert b"".join(chunks) == "".join(f"{i}\n" for i in range(100)).encode()


def test_wrong_type_names_object_line_and_column():
    columns = [Column("page", "text", 256), Column("iteminsession", "integer")]
    data = b'{"page": "Home", "iteminsession": 1}\n{\n  "page": "NextSong",\n  "iteminsession": "abc"\n}'
    with pytest.raises(SourceDataError) as info:
        list(encode_rows(parse(data), columns, make_extractor(columns, "auto", None, SOURCE), SOURCE))
    assert str(info.value) == f'{SOURCE}, line 2: column iteminsession: "abc" is not an integer'


def test_a_value_that_is_not_an_object_is_an_error():
    columns = [Column("n", "integer")]
    with pytest.raises(SourceDataError, match=r", line 2: expected a JSON object, found \[1,2\]"):
        list(encode_rows(parse(b'{"n": 1}\n[1, 2]'), columns, make_extractor(columns, "auto", None, SOURCE), SOURCE))


def test_invalid_utf8_line_is_right_in_any_chunking():
    data = '{"a": "é"}\n{"a": 1}\n{"a": "x\xff"}'.encode("latin-1").replace(b"\xe9", "é".encode())
    for cut in range(len(data) + 1):
        assert error_of([data[:cut], data[cut:]]).startswith(f"{SOURCE}, line 3: not UTF-8"), cut


def test_file_ending_inside_a_multibyte_character():
    assert error_of('{"a": "é"}\n"é'.encode()[:-1]).startswith(f"{SOURCE}, line 2: not UTF-8")
