"""Hostile Track-2 submission zips: refused with a reason, quickly, nothing extracted (issue 13)."""

from __future__ import annotations

import os
import struct
import time
import warnings
import zipfile
from pathlib import Path

import pytest
import yaml

from sqa.cli import main as sqa_main
from sqa.data import AudioRecord, write_track2_jsonl
from sqa.data.archives import MAX_MEMBER_BYTES
from sqa.track2.submission import README_KEYS, validate_submission

IDS = ["a", "b", "c", "d"]
GOOD_SCORES = "".join(f"{i} {3.0 + n / 10}\n" for n, i in enumerate(IDS))
README = yaml.safe_dump({key: "x" for key in README_KEYS})


def _zip(path: Path, members: list[tuple[str, str | bytes]], method: int = zipfile.ZIP_DEFLATED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names built here
        with zipfile.ZipFile(path, "w", compression=method) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return path


def _patch_headers(path: Path, offset_in_local: int, offset_in_central: int, value: int) -> None:
    """Overwrite a 2-byte field of every local and central header (flags or method)."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", offset_in_local), (b"PK\x01\x02", offset_in_central)):
        start = data.find(signature)
        while start != -1:
            data[start + offset : start + offset + 2] = struct.pack("<H", value)
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def _declare_size(path: Path, size: int) -> None:
    """Make every header declare ``size`` uncompressed bytes (a bomb that lies small or large)."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.find(signature)
        while start != -1:
            data[start + offset : start + offset + 4] = struct.pack("<I", size)
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def _hostile(case: str, folder: Path) -> Path:
    path = folder / f"{case.replace(' ', '_')}.zip"
    good = [("mos.scp", GOOD_SCORES), ("README.yaml", README)]
    if case == "not a zip":
        path.write_text("a 3.0\n")
    elif case == "truncated":
        _zip(path, good)
        path.write_bytes(path.read_bytes()[:60])
    elif case == "encrypted":
        _zip(path, good, zipfile.ZIP_STORED)
        _patch_headers(path, 6, 8, 0x1)  # general purpose flag bit 0: encrypted
    elif case == "unsupported compression":
        _zip(path, good, zipfile.ZIP_STORED)
        _patch_headers(path, 8, 10, 99)  # method 99 (AES), which Python cannot read
    elif case == "two mos.scp":
        _zip(path, [("mos.scp", "garbage\x00 not scores"), *good])
    elif case == "parent path":
        _zip(path, [*good, ("../../evil.txt", "x")])
    elif case == "absolute path":
        _zip(path, [*good, ("/tmp/evil.txt", "x")])
    elif case == "windows parent path":
        _zip(path, [*good, ("..\\evil.txt", "x")])
    elif case == "duplicate ids":
        _zip(path, [("mos.scp", GOOD_SCORES + "a 2.0\n"), ("README.yaml", README)])
    elif case in ("nan", "inf"):
        _zip(path, [("mos.scp", GOOD_SCORES.replace("3.1", case)), ("README.yaml", README)])
    elif case == "declared huge":
        _zip(path, good)
        _declare_size(path, MAX_MEMBER_BYTES + 1)
    elif case == "declared small":  # inflates past what it declares: read stops, CRC fails
        _zip(path, [("mos.scp", GOOD_SCORES * 1000), ("README.yaml", README)])
        _declare_size(path, 16)
    elif case == "zip bomb":  # 20 MB of one repeated line: ~1000x compression
        _zip(path, [("mos.scp", "a 3.0\n" * 3_500_000), ("README.yaml", README)])
    elif case == "huge line":  # one id as long as the limit allows, quoted in the error
        _zip(path, [("mos.scp", os.urandom(1_000_000).hex() + " nan\n"), ("README.yaml", README)])
    return path


REASONS = {
    "not a zip": "not a readable zip",
    "truncated": "not a readable zip",
    "encrypted": "'mos.scp' is encrypted",
    "unsupported compression": "compression method 99",
    "two mos.scp": "'mos.scp' appears 2 times",
    "parent path": "'../../evil.txt' is absolute or contains '..'",
    "absolute path": "'/tmp/evil.txt' is absolute or contains '..'",
    "windows parent path": "is absolute or contains '..'",
    "duplicate ids": "duplicate id 'a'",
    "nan": "score of 'b' is not finite",
    "inf": "score of 'b' is not finite",
    "declared huge": "declares 67108865 bytes",
    "declared small": "not a readable zip (Bad CRC-32",
    "zip bomb": "refused as a possible zip bomb",
    "huge line": "not finite",
}


@pytest.fixture
def references(tmp_path: Path) -> Path:
    labels = {i: 1.0 + n for n, i in enumerate(IDS)}
    records = [
        AudioRecord(i, f"sys{n % 2}", "", metrics={"mos": labels[i]}) for n, i in enumerate(IDS)
    ]
    return write_track2_jsonl(tmp_path / "ref.jsonl", records)


@pytest.mark.parametrize("case", list(REASONS))
def test_hostile_zips_are_refused_with_a_reason(
    case: str, tmp_path: Path, references: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = _hostile(case, tmp_path)
    before = set(tmp_path.rglob("*"))
    good = _zip(tmp_path / "good.zip", [("mos.scp", GOOD_SCORES), ("README.yaml", README)])
    started = time.perf_counter()
    commands = {
        "validate": ["track2", "validate", str(hostile), "--data", str(references)],
        "rank": ["track2", "rank", "--submission", f"bad={hostile}", "--submission",
                 f"good={good}", "--ref", str(references)],
    }  # fmt: skip
    for name, command in commands.items():
        assert sqa_main(command) == 2, name
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in captured.err, captured.err[:2000]
        assert lines[0].startswith(f"sqa track2: error: {hostile}"), lines[0][:300]
        assert REASONS[case] in lines[0], lines[0][:300]
        assert len(lines[0]) < 1500, f"{name}: a {len(lines[0])}-character error line"
    assert time.perf_counter() - started < 5.0
    # Nothing was extracted: the only new file is the good zip of this test.
    assert set(tmp_path.rglob("*")) - before == {good}
    assert not Path("/tmp/evil.txt").exists()


def test_a_good_zip_still_validates_and_ranks(tmp_path: Path, references: Path) -> None:
    good = _zip(tmp_path / "good.zip", [("mos.scp", GOOD_SCORES), ("README.yaml", README)])
    assert validate_submission(good, IDS) == []
    other = _zip(tmp_path / "other.zip", [("mos.scp", "a 1.0\nb 2.0\nc 3.5\nd 3.9\n")])
    command = ["track2", "rank", "--submission", f"good={good}", "--submission",
               f"other={other}", "--ref", str(references)]  # fmt: skip
    assert sqa_main(command) == 0


def test_many_bad_lines_make_one_short_line(tmp_path: Path, references: Path, capsys) -> None:
    scores = "".join(f"{os.urandom(250).hex()} nan\n" for _ in range(10_000))
    hostile = _zip(tmp_path / "many.zip", [("mos.scp", scores), ("README.yaml", README)])
    assert sqa_main(["track2", "validate", str(hostile)]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and len(line) < 1500 and "more" in line
