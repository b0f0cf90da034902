"""Files read as they are: headerless CSV with quotes and line breaks in fields, TSV, gzip, nested JSON lines;
decoding and shape errors name the file, the line and the fix."""

from __future__ import annotations

import gzip
import json

import pytest

from accelbench.exceptions import ConfigError, DataError
from accelbench.taskdata.files import ReadOptions, flat_keys, format_of, get_field, read_table

NEWS = (
    '"3","Oil prices slip, again","Brent fell 2 percent, traders said."\n'
    '"1","Talks resume","Envoys met on Tuesday.\nNo deal was reached, officials said."\n'
    "\n"
    '4,New chip,"It uses ""40 percent"" less power"\n'
)


def test_headerless_csv_with_quotes_and_embedded_newlines(tmp_path):
    (tmp_path / "news.csv").write_text(NEWS)
    t = read_table(
        tmp_path / "news.csv", ReadOptions("csv", header=False, columns=["label", "title", "body"])
    )
    assert t.columns == ["label", "title", "body"]
    assert t.values("label") == ["3", "1", "4"]
    assert t.values("title") == ["Oil prices slip, again", "Talks resume", "New chip"]
    assert t.values("body")[1] == "Envoys met on Tuesday.\nNo deal was reached, officials said."
    assert t.values("body")[2] == 'It uses "40 percent" less power'
    assert t.lines == [1, 2, 5]  # the line each row starts on; the blank line is skipped


def test_tsv_reads_quotes_literally_and_takes_a_delimiter_and_quotechar(tmp_path):
    (tmp_path / "a.tsv").write_text('sentence\tlabel\na "quoted" word\t1\n')
    t = read_table(tmp_path / "a.tsv", ReadOptions("tsv"))
    assert t.values("sentence") == ['a "quoted" word'] and t.values("label") == ["1"]
    (tmp_path / "b.csv").write_text("text;label\n'a; b';pos\nc;neg\n")
    t = read_table(tmp_path / "b.csv", ReadOptions("csv", delimiter=";", quotechar="'"))
    assert t.values("text") == ["a; b", "c"] and t.values("label") == ["pos", "neg"]


def test_gzip_csv_and_json_lines(tmp_path):
    with gzip.open(tmp_path / "a.csv.gz", "wt", encoding="utf-8") as f:
        f.write("text,label\nhéllo,1\nworld,0\n")
    assert read_table(tmp_path / "a.csv.gz", ReadOptions("csv")).values("text") == ["héllo", "world"]
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write('{"review": {"body": "fine", "stars": 4}}\n')
    assert read_table(tmp_path / "a.jsonl.gz", ReadOptions("json")).values("review.stars") == [4]
    assert format_of(tmp_path / "a.jsonl.gz") == "json" and format_of("x.tsv") == "tsv"
    assert format_of("x.parquet") is None


def test_nested_json_lines_and_json_array(tmp_path):
    rows = [{"id": 1, "review": {"body": "great", "meta": {"lang": "en"}}, "y": "pos"},
            {"id": 2, "review": {"body": "awful", "meta": {"lang": "en"}}, "y": "neg"}]  # fmt: skip
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = read_table(tmp_path / "a.jsonl", ReadOptions("json"))
    assert t.values("review.body") == ["great", "awful"] and t.values("review.meta.lang") == ["en", "en"]
    assert t.columns == ["id", "review.body", "review.meta.lang", "y"] and t.has("review.body")
    assert not t.has("review.title")
    (tmp_path / "b.json").write_text(json.dumps(rows))
    assert read_table(tmp_path / "b.json", ReadOptions("json")).values("y") == ["pos", "neg"]
    assert get_field({"a.b": 1}, "a.b") == 1 and flat_keys({"a": {}}) == ["a"]


def test_a_row_missing_a_nested_field_names_its_line(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"r": {"body": "x"}}\n\n{"r": {"title": "y"}}\n')
    t = read_table(tmp_path / "a.jsonl", ReadOptions("json"))
    with pytest.raises(
        DataError, match=r"a.jsonl line 3: field 'r.body' is missing \(this row has: r.title\)"
    ):
        t.values("r.body")


def test_not_utf8_names_file_line_and_byte(tmp_path):
    (tmp_path / "latin.csv").write_bytes("text,label\nok,1\ncaf\xe9 cr\xe8me,0\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_table(tmp_path / "latin.csv", ReadOptions("csv"))
    msg = e.value.message
    assert "latin.csv is not UTF-8: line 3, column 4, byte offset 19 is 0xe9" in msg and "\n" not in msg
    assert "iconv" in e.value.fix


def test_bad_json_and_wrong_field_count_name_the_line(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n{"a": 2,}\n')
    with pytest.raises(DataError, match="a.jsonl line 2, column 9: not valid JSON"):
        read_table(tmp_path / "a.jsonl", ReadOptions("json"))
    (tmp_path / "b.csv").write_text("1,title,body\n2,one, two,three\n")
    with pytest.raises(DataError) as e:
        read_table(tmp_path / "b.csv", ReadOptions("csv", header=False, columns=["label", "title", "body"]))
    assert "b.csv line 2: 4 field(s) where the `columns:` has 3 (label, title, body)" in e.value.message
    assert "quote fields" in e.value.fix
    (tmp_path / "c.jsonl").write_text('{"a": 1}\n"just text"\n')
    with pytest.raises(DataError, match="c.jsonl line 2: a JSON str, not an object"):
        read_table(tmp_path / "c.jsonl", ReadOptions("json"))


def test_truncated_gzip_is_a_data_error(tmp_path):
    data = gzip.compress(b"text,label\n" + b"words,1\n" * 1000)
    (tmp_path / "t.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read .*t.csv.gz"):
        read_table(tmp_path / "t.csv.gz", ReadOptions("csv"))


@pytest.mark.parametrize("kw, match", [
    ({"format": "csv", "header": False}, "needs `columns:`"),
    ({"format": "csv", "delimiter": "||"}, "must be one character"),
    ({"format": "json", "header": False, "columns": ["a"]}, "apply to CSV and TSV"),
    ({"format": "xml"}, "format must be one of"),
    ({"format": "csv", "header": False, "columns": ["a", "a"]}, "distinct names"),
])  # fmt: skip
def test_bad_read_options(kw, match):
    with pytest.raises(ConfigError, match=match):
        ReadOptions(**kw)
