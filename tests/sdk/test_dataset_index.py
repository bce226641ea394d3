"""One index parser: the LC's count, the IL split and the SDK's data sources see the same samples."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from lc.incremental import samples
from lc.managers.dataset import count_samples
from sedna.datasources import CSVDataParse, IndexFileError, TxtDataParse, parse_index, read_index

# Quoted newlines (one of them inside a quoted "# ..." line), blank lines, comments, CRLF,
# an all-empty record and an escaped quote: 5 samples.
AWKWARD_CSV = (
    "# exported by the labelling tool\n"
    "path,caption,label\n"
    "\n"
    'a.png,"a helmet\non a head",1\n'
    "# a comment between records\n"
    'b.png,"three\n# not a comment\nlines",0\r\n'
    "   \n"
    ",,\n"
    'c.png,"say ""hi""",1\n'
    "d.png,plain,0\n"
    'e.png,"last\n",1\n'
)


def test_quoted_newlines_blank_lines_and_comments_give_one_record_each() -> None:
    index = parse_index(AWKWARD_CSV, "csv")
    assert index.header is not None and index.header.fields == ("path", "caption", "label")
    assert [r.fields[0] for r in index.records] == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert index.records[1].fields[1] == "three\n# not a comment\nlines"
    assert (index.records[1].line, index.records[1].end_line) == (7, 9)
    assert index.records[2].fields[1] == 'say "hi"' and not index.unterminated


def test_the_count_the_il_split_and_the_sdk_agree(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    path.write_text(AWKWARD_CSV, newline="")
    os.utime(path, (1_000_000, 1_000_000))  # settled

    counted = count_samples(path, "csv")
    index = samples.read_index(str(path), "csv")
    train, evaluation = samples.split(0, len(index.lines), 0.6)
    parsed = CSVDataParse("train").parse(path, label="label")

    assert counted == len(index.lines) == len(parsed.x) == 5
    assert (len(train), len(evaluation)) == (3, 2)
    # each round file is valid CSV holding exactly its samples, quoted newlines intact
    rows = []
    for name, positions in (("train", train), ("eval", evaluation)):
        written = samples.write_samples(tmp_path / f"{name}.csv", index, positions)
        assert count_samples(Path(written), "csv") == len(positions)
        rows += list(csv.reader(io.StringIO(Path(written).read_text(), newline="")))[1:]
    assert sorted(row[1] for row in rows) == sorted(parsed.x["caption"])


def test_txt_skips_blank_lines_and_comments_everywhere(tmp_path: Path) -> None:
    path = tmp_path / "index.txt"
    path.write_text("# header comment\na.png 1\n\n   # indented comment\r\nb.png 0\r\n\tc.png\n")
    os.utime(path, (1_000_000, 1_000_000))
    assert count_samples(path, "txt") == len(samples.read_index(str(path), "txt").lines) == 3
    assert len(TxtDataParse("train").parse(path)) == 3
    assert [r.line for r in read_index(path).records] == [2, 5, 6]


def test_a_record_still_being_written_is_left_out_until_it_settles(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    path.write_text('path,caption\na.png,done\nb.png,"half a cap')
    assert len(read_index(path, settle_seconds=60)) == 1
    assert count_samples(path, "csv") == len(samples.read_index(str(path), "csv").lines) == 1
    os.utime(path, (1_000_000, 1_000_000))  # nobody finished it: a broken file, named with its line
    with pytest.raises(IndexFileError, match=r"index\.csv:3: a quoted field is never closed"):
        read_index(path, settle_seconds=60)


def test_a_settled_last_line_without_newline_is_a_sample(tmp_path: Path) -> None:
    path = tmp_path / "index.txt"
    path.write_text("a.png 1\nb.png 2")
    assert len(read_index(path, settle_seconds=60)) == 1
    os.utime(path, (1_000_000, 1_000_000))
    assert [r.text for r in read_index(path, settle_seconds=60).records] == ["a.png 1", "b.png 2"]
    assert not parse_index("a.png 1\n# trailing comment", "txt").unterminated


@pytest.mark.parametrize(("name", "fmt", "message"), [
    ("missing.txt", None, "does not exist"),
    ("index.json", None, "index format 'json'"),
    ("dir", "txt", "is a directory"),
])
def test_unreadable_indexes_name_the_file(tmp_path: Path, name: str, fmt: str | None, message: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(IndexFileError, match=message):
        read_index(tmp_path / name, fmt)


def test_a_utf8_bom_does_not_rename_the_first_column() -> None:
    index = parse_index("\ufeffpath,label\na,1\n", "csv")
    assert index.header is not None and index.header.fields == ("path", "label")
