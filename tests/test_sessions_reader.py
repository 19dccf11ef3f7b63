"""The sessions CSV reader on awkward real-world files: encodings, spreadsheet quirks, times, items files.

Each test writes a tiny CSV and checks what is read (ids, order, counts) or the one error line.
"""

from __future__ import annotations

import gzip

import pytest

from nnkit.datasets import sessions as S
from nnkit.errors import DataError


def _write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def _sessions(data) -> list[list[str]]:
    return [list(data.item_ids[data.tokens[s:e]]) for s, e in zip(data.offsets[:-1], data.offsets[1:])]


# -- 1. UTC offsets ------------------------------------------------------------------------------

def test_times_with_different_offsets_are_ordered_by_the_instant(tmp_path):
    # a daylight-saving change: 01:30+01:00 is 00:30Z, 03:10+02:00 is 01:10Z; 02:45+01:00 is 01:45Z
    path = _write(tmp_path / "dst.csv", "session_id,item_id,timestamp\n"
                  "a,x2,2024-03-31T03:10:00+02:00\n"
                  "a,x3,2024-03-31T02:45:00+01:00\n"
                  "a,x1,2024-03-31T01:30:00+01:00\n"
                  "b,x3,2024-03-31T05:00:00Z\n"
                  "b,x1,2024-03-31T06:30:00+02:00\n")
    assert _sessions(S.read_sessions(path)) == [["x1", "x2", "x3"], ["x1", "x3"]]


def test_times_with_and_without_offsets_in_one_column_are_refused(tmp_path):
    path = _write(tmp_path / "tz.csv", "session_id,item_id,timestamp\n"
                  "a,x1,2024-01-02T10:00:00+01:00\n"
                  "a,x2,2024-01-02T10:30:00+03:00\n"
                  "b,x1,2024-01-05 10:00\n"
                  "b,x2,2024-01-04 10:00\n")
    with pytest.raises(DataError, match=r"tz.csv, column 'timestamp': '2024-01-02T10:00:00\+01:00' \(line 2\) "
                                        r"has a UTC offset and '2024-01-05 10:00' \(line 4\) has none"):
        S.read_sessions(path)


# -- 2. more fields than the header --------------------------------------------------------------

def test_a_trailing_comma_on_every_row_does_not_shift_the_columns(tmp_path):
    path = _write(tmp_path / "trail.csv", "session_id,item_id,quantity\ns0,i1,3,\ns0,i2,1,\ns1,i2,2,\ns1,i3,1,\n")
    data = S.read_sessions(path)
    assert _sessions(data) == [["i1", "i2"], ["i2", "i3"]]
    with_time = _write(tmp_path / "trail_t.csv", "session_id,item_id,timestamp\ns0,i2,5,\ns0,i1,4,\ns1,i1,1,\ns1,i3,2,\n")
    assert _sessions(S.read_sessions(with_time)) == [["i1", "i2"], ["i1", "i3"]]
    some_rows = _write(tmp_path / "some.csv", "session_id,item_id\ns0,i1\ns0,i2,\ns1,i1,\ns1,i2\n")
    assert _sessions(S.read_sessions(some_rows)) == [["i1", "i2"], ["i1", "i2"]]


def test_a_row_with_a_value_beyond_the_header_names_its_file_line(tmp_path):
    every = _write(tmp_path / "every.csv", "session_id,item_id\ns0,i1,3\ns0,i2,1\n")
    with pytest.raises(DataError, match=r"every.csv, line 2: 3 fields, but the header has 2"):
        S.read_sessions(every)
    # a quoted name spanning two lines comes first: the long row is on file line 5 (record 4)
    one = _write(tmp_path / "one.csv", 'session_id,item_id,name\ns0,i1,"two\nlines"\ns0,i2,b\ns1,i1,c,oops\n')
    with pytest.raises(DataError, match=r"one.csv, line 5: 4 fields, but the header has 3"):
        S.read_sessions(one)


# -- 6. day-first dates --------------------------------------------------------------------------

def test_day_first_dates_are_read_day_first_in_every_row(tmp_path):
    path = _write(tmp_path / "dayfirst.csv", "session_id,item_id,timestamp\n"
                  "a,x1,03/02/2024 10:00\n"   # 3 Feb
                  "a,x2,13/01/2024 10:00\n"   # 13 Jan: only day-first reads it
                  "a,x3,01/02/2024 10:00\n"   # 1 Feb
                  "b,x1,20/02/2024 09:00\n"
                  "b,x2,05/02/2024 09:00\n"
                  "b,x3,2024-02-06 09:00\n")  # ISO stays 6 Feb (day-first would make it 2 June)
    assert _sessions(S.read_sessions(path)) == [["x2", "x3", "x1"], ["x2", "x3", "x1"]]  # 5, 6, 20 Feb


def test_month_first_dates_and_an_unambiguous_column(tmp_path):
    path = _write(tmp_path / "us.csv", "session_id,item_id,timestamp\n"
                  "a,x1,01/13/2024\na,x2,02/01/2024\na,x3,01/02/2024\n")
    assert _sessions(S.read_sessions(path)) == [["x3", "x1", "x2"]]
    # no day above 12 anywhere, but every session falls on one day: both readings give the same order
    invoices = _write(tmp_path / "inv.csv", "session_id,item_id,timestamp\n"
                      "1,x1,12/1/2010 8:26\n1,x2,12/1/2010 8:20\n2,x2,12/2/2010 9:00\n2,x3,12/2/2010 9:01\n")
    assert _sessions(S.read_sessions(invoices)) == [["x2", "x1"], ["x2", "x3"]]


def test_ambiguous_or_inconsistent_dates_are_refused(tmp_path):
    ambiguous = _write(tmp_path / "amb.csv", "session_id,item_id,timestamp\n"
                       "a,x1,03/02/2024\na,x2,02/03/2024\nb,x1,01/01/2024\nb,x2,01/02/2024\n")
    with pytest.raises(DataError, match=r"amb.csv, line \d, column 'timestamp': dates such as '0\d/0\d/2024' "
                                        r"read day-first and month-first .* expected ISO dates"):
        S.read_sessions(ambiguous)
    both = _write(tmp_path / "both.csv", "session_id,item_id,timestamp\n"
                  "a,x1,13/01/2024\na,x2,01/20/2024\n")
    with pytest.raises(DataError, match=r"both.csv, column 'timestamp': '13/01/2024' \(line 2\) can only be "
                                        r"day/month/year and '01/20/2024' \(line 3\) only month/day/year"):
        S.read_sessions(both)


# -- 7. encodings --------------------------------------------------------------------------------

def test_a_utf8_file_with_a_stray_byte_is_refused_at_its_line(tmp_path):
    path = _write(tmp_path / "mixed.csv", b"session_id,item_id\na,caf\xc3\xa9\na,tea\nb,caf\xe9\nb,tea\n")
    with pytest.raises(DataError, match=r"mixed.csv, line 4: not valid UTF-8 \(byte 0xe9 at offset 38\); expected UTF-8"):
        S.read_sessions(path)


def test_a_wholly_latin1_or_cp1252_file_still_reads(tmp_path):
    path = _write(tmp_path / "latin.csv", "session_id,item_id\na,café\na,thé\nb,café\nb,€uro\n", "cp1252")
    data = S.read_sessions(path)
    assert _sessions(data) == [["café", "thé"], ["café", "€uro"]]


def test_utf16_files_ask_for_utf8(tmp_path):
    for encoding in ("utf-16", "utf-16-be"):
        text = "session_id,item_id\na,x\na,y\n"
        raw = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
        path = _write(tmp_path / f"{encoding}.csv", raw)
        with pytest.raises(DataError, match=rf"{encoding}.csv: the file is UTF-16 text.*expected UTF-8"):
            S.read_sessions(path)
    no_bom = _write(tmp_path / "nobom.csv", "session_id,item_id\na,x\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"nobom.csv: the file holds NUL bytes"):
        S.read_sessions(no_bom)


# -- 8. 'NA', 'None', 'null' are values ----------------------------------------------------------

def test_na_like_cells_are_ids_and_categories_not_missing(tmp_path):
    sessions = _write(tmp_path / "s.csv", "session_id,item_id\nNA,null\nNA,None\nnan,N/A\nnan,null\n")
    items = _write(tmp_path / "i.csv", "item_id,category,name\nnull,NA,NA\nNone,None,x\nN/A,,\n")
    data = S.read_sessions(sessions, items_path=str(items))
    assert _sessions(data) == [["null", "None"], ["N/A", "null"]]
    assert data.category_names == ["NA", "None"]
    assert dict(zip(data.item_ids, data.categories)) == {"null": 0, "None": 1, "N/A": -1}  # only '' is missing
    assert dict(zip(data.item_ids, data.names))["null"] == "NA"
    empty = _write(tmp_path / "e.csv", "session_id,item_id\na,x\na,  \nb,NA\n")
    with pytest.raises(DataError, match=r"e.csv, line 3, column 'item_id': empty value \(1 of 3 rows\)"):
        S.read_sessions(empty)


# -- 9. the items file's header ------------------------------------------------------------------

@pytest.mark.parametrize("header", ["\ufeffStockCode,category", '"StockCode","category"', "\ufeff\"StockCode\",category"])
def test_items_header_with_bom_or_quotes_maps_the_item_column(tmp_path, header):
    sessions = _write(tmp_path / "inv.csv", "InvoiceNo,StockCode\n1,x1\n1,x2\n2,x1\n2,x2\n")
    items = _write(tmp_path / "items.csv", f"{header}\nx1,A\nx2,B\n")
    data = S.read_sessions(sessions, items_path=str(items), session_column="InvoiceNo", item_column="StockCode")
    assert dict(zip(data.item_ids, data.categories)) == {"x1": 0, "x2": 1}


def test_items_file_without_the_id_column_names_the_key_and_both_names(tmp_path):
    sessions = _write(tmp_path / "inv.csv", "InvoiceNo,StockCode\n1,x1\n1,x2\n")
    items = _write(tmp_path / "items.csv", "Code,category\nx1,A\n")
    with pytest.raises(DataError, match=r"items.csv: no column 'StockCode' \(config key data.item_column, .*\) "
                                        r"or 'item_id'; the items file has columns 'Code', 'category'"):
        S.read_sessions(sessions, items_path=str(items), session_column="InvoiceNo", item_column="StockCode")


# -- 14. items repeated in the items file --------------------------------------------------------

def test_repeated_items_rows_are_counted_and_conflicting_categories_refused(tmp_path):
    sessions = _write(tmp_path / "s.csv", "session_id,item_id\na,x1\na,x2\n")
    same = _write(tmp_path / "same.csv", "item_id,category,name\nx1,A,Apple\n x1 ,A,Apple green\nx2,B,\nx2,B,\n")
    data = S.read_sessions(sessions, items_path=str(same))
    assert data.summary["items file rows repeating an item (first kept)"] == 2
    assert dict(zip(data.item_ids, data.names))["x1"] == "Apple"
    clash = _write(tmp_path / "clash.csv", "item_id,category\nx1,A\nx2,B\nx1,B\n")
    with pytest.raises(DataError, match=r"clash.csv, line 4: item 'x1' again, with category 'B'; line 2 gave it 'A'"):
        S.read_sessions(sessions, items_path=str(clash))
    assert "items file rows repeating" not in S.read_sessions(sessions, items_path=str(
        _write(tmp_path / "once.csv", "item_id,category\nx1,A\n"))).summary


# -- 15. line numbers after a field spanning lines -----------------------------------------------

def test_errors_name_the_file_line_after_multiline_fields_and_blank_lines(tmp_path):
    path = _write(tmp_path / "t.csv", 'session_id,item_id,name\na,x1,"multi\nline"\n\na,x2,b\nb,,c\n')
    with pytest.raises(DataError, match=r"t.csv, line 6, column 'item_id': empty value \(1 of 3 rows\)"):
        S.read_sessions(path)
    bad_time = _write(tmp_path / "bt.csv", 'session_id,item_id,timestamp,name\na,x1,1,"a\nb"\na,x2,soon,c\n')
    with pytest.raises(DataError, match=r"bt.csv, line 4, column 'timestamp': cannot read 'soon'"):
        S.read_sessions(bad_time)


# -- 16. sessions of one event -------------------------------------------------------------------

def test_one_event_sessions_are_not_blamed_on_min_count(tmp_path):
    single = _write(tmp_path / "one.csv", "session_id,item_id\na,x\nb,x\nc,y\n")
    with pytest.raises(DataError) as info:
        S.read_sessions(single, min_count=1)
    assert "every session has fewer than 2 events (3 sessions)" in str(info.value)
    assert "min_count" not in str(info.value)
    rare = _write(tmp_path / "rare.csv", "session_id,item_id\na,x\na,y\nb,z\nb,x\n")
    with pytest.raises(DataError, match=r"data.min_count=3 times \(2 sessions had 2 or more events before\); "
                                        "lower data.min_count"):
        S.read_sessions(rare, min_count=3)


# -- 17. columns the user named ------------------------------------------------------------------

def test_a_named_optional_column_must_exist(tmp_path):
    path = _write(tmp_path / "s.csv", "session_id,item_id,Timestamp,category\na,x1,2,A\na,x2,1,B\n")
    assert _sessions(S.read_sessions(path, timestamp_column="time_stamp")) == [["x1", "x2"]]  # not asked: optional
    with pytest.raises(DataError, match=r"s.csv: no column 'time_stamp' \(config key data.timestamp_column\) in the "
                                        r"sessions file; the file has columns 'session_id', 'item_id', 'Timestamp'"):
        S.read_sessions(path, timestamp_column="time_stamp", required_columns=["timestamp_column"])
    assert _sessions(S.read_sessions(path, timestamp_column="Timestamp",
                                     required_columns=["timestamp_column"])) == [["x2", "x1"]]
    with pytest.raises(DataError, match=r"no column 'Category' \(config key data.category_column\)"):
        S.read_sessions(path, category_column="Category", required_columns=["category_column"])
    items = _write(tmp_path / "i.csv", "item_id,category,title\nx1,A,One\n")
    data = S.read_sessions(path, items_path=str(items), name_column="title", required_columns=["name_column"])
    assert dict(zip(data.item_ids, data.names))["x1"] == "One"  # found in the items file
    with pytest.raises(DataError, match=r"no column 'label' \(config key data.name_column\) in either file"):
        S.read_sessions(path, items_path=str(items), name_column="label", required_columns=["name_column"])


def test_load_sessions_requires_only_columns_set_away_from_the_schema_defaults(tmp_path):
    from nnkit.tasks.embedding.data import load_sessions
    from nnkit.tasks.embedding.task import EmbeddingTask

    defaults = {key: field.default for key, field in EmbeddingTask.schema["data"].items()}
    path = _write(tmp_path / "s.csv", "session_id,item_id\na,x1\na,x2\n")
    cfg = {**defaults, "path": str(path), "min_count": 1}
    assert load_sessions(cfg, defaults)[0].n_sessions == 1  # no timestamp/category/name column: all optional
    with pytest.raises(DataError, match=r"no column 'ts' \(config key data.timestamp_column\)"):
        load_sessions({**cfg, "timestamp_column": "ts"}, defaults)
    assert load_sessions({**cfg, "timestamp_column": ""}, defaults)[0].n_sessions == 1  # "" turns the column off


# -- what already worked keeps working -----------------------------------------------------------

def test_bom_crlf_gzip_and_quoted_ids_read_as_the_plain_file(tmp_path):
    text = 'session_id,item_id,timestamp\na,"x,y",2\na,say "hi",1\nb,00012,1\nb,12,2\n'
    want = [['say "hi"', "x,y"], ["00012", "12"]]
    assert _sessions(S.read_sessions(_write(tmp_path / "plain.csv", text))) == want
    assert _sessions(S.read_sessions(_write(tmp_path / "bom.csv", "\ufeff" + text))) == want
    assert _sessions(S.read_sessions(_write(tmp_path / "crlf.csv", text.replace("\n", "\r\n")))) == want
    gz = _write(tmp_path / "s.csv.gz", gzip.compress(text.encode()))
    assert _sessions(S.read_sessions(gz)) == want
    broken = _write(tmp_path / "b.csv.gz", b"not gzip")
    with pytest.raises(DataError, match=r"b.csv.gz: cannot decompress"):
        S.read_sessions(broken)


def test_semicolons_and_bom_only_files_get_their_errors(tmp_path):
    semi = _write(tmp_path / "semi.csv", "session_id;item_id\na;x\na;y\n")
    with pytest.raises(DataError, match=r"semi.csv, line 1: columns separated by semicolons"):
        S.read_sessions(semi)
    with pytest.raises(DataError, match=r"empty file"):
        S.read_sessions(_write(tmp_path / "bom_only.csv", "\ufeff\n"))
    with pytest.raises(DataError, match=r"has a header but no rows"):
        S.read_sessions(_write(tmp_path / "h.csv", "\ufeffsession_id,item_id\n"))
    with pytest.raises(DataError, match=r"cannot parse as CSV"):
        S.read_sessions(_write(tmp_path / "q.csv", 'session_id,item_id\na,"x\n'))

