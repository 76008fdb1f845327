"""Kaldi data directories as the official tools write and read them: utt2dur, segments, archives,
pipes (each directory is built by hand in the official layout)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sqa import kaldi_audio
from sqa.audio import audio_duration, load_audio
from sqa.data import AudioRecord, load_records, read_kaldi_dir, write_kaldi_dir, write_track2_jsonl
from sqa.errors import DataFormatError, UnreadableAudioError

RATE = 8000


def write_wav(path: Path, seconds: float, seed: int = 0) -> np.ndarray:
    """Write noise as 16-bit PCM and return the samples as read back (float32)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, round(seconds * RATE))
    soundfile.write(path, noise.astype(np.float32), RATE, subtype="PCM_16")
    return soundfile.read(path, dtype="float32")[0]


def read_id_file(path: Path) -> dict[str, str]:
    """``<id> <rest>`` lines, split as the official URGENT scripts split them."""
    pairs = (line.strip().split(maxsplit=1) for line in path.read_text().splitlines())
    return {parts[0]: parts[1] for parts in pairs if parts}


# --- utt2dur -----------------------------------------------------------------------------------


def test_writer_lists_every_id_in_utt2dur_as_collect_metrics_needs(tmp_path: Path) -> None:
    write_wav(tmp_path / "audio" / "a.wav", 0.5)
    write_wav(tmp_path / "audio" / "b.wav", 1.25, seed=1)
    records = [
        AudioRecord("a", "sysA", str(tmp_path / "audio" / "a.wav"), metrics={"mos": 3.0}),
        AudioRecord("b", "sysB", str(tmp_path / "audio" / "b.wav"), duration=1.2, metrics={}),
    ]
    folder = write_kaldi_dir(tmp_path / "data", records)
    # What URGENT 2026 collect_metrics.py reads: every wav.scp id in utt2sys and utt2dur (a
    # float), every other *.scp a metric with float values.
    wav = read_id_file(folder / "wav.scp")
    systems = read_id_file(folder / "utt2sys")
    durations = {key: float(value) for key, value in read_id_file(folder / "utt2dur").items()}
    assert set(wav) == set(systems) == set(durations) == {"a", "b"}
    assert durations == {"a": 0.5, "b": 1.2}  # the header's length, else the record's duration
    for scp in folder.glob("*.scp"):
        if scp.name != "wav.scp":
            assert all(math.isfinite(float(v)) for v in read_id_file(scp).values())
    assert [r.duration for r in read_kaldi_dir(folder)] == [0.5, 1.2]


def test_writer_warns_when_a_duration_is_unknowable(tmp_path: Path) -> None:
    records = [AudioRecord("gone", "s", str(tmp_path / "missing.wav"))]
    with pytest.warns(UserWarning, match="collect_metrics.py needs every id"):
        folder = write_kaldi_dir(tmp_path / "data", records)
    assert not (folder / "utt2dur").exists()


# --- segments ----------------------------------------------------------------------------------


def make_segments_dir(tmp_path: Path) -> tuple[Path, np.ndarray]:
    folder = tmp_path / "data"
    samples = write_wav(folder / "rec" / "meeting.wav", 2.0)
    write_wav(folder / "rec" / "call.wav", 1.0, seed=3)
    (folder / "wav.scp").write_text("meeting rec/meeting.wav\ncall rec/call.wav\n")
    (folder / "segments").write_text(
        "meeting-a meeting 0.5 1.25\nmeeting-b meeting 1.0 -1\ncall-a call 0.1 1.3\n"
    )
    (folder / "utt2sys").write_text("meeting-a sysM\nmeeting-b sysM\ncall-a sysC\n")
    (folder / "mos.scp").write_text("meeting-a 3.5\ncall-a 2.0\n")
    return folder, samples


def test_segments_read_only_their_part_of_the_recording(tmp_path: Path) -> None:
    folder, samples = make_segments_dir(tmp_path)
    records = load_records(folder)
    assert [r.sample_id for r in records] == ["meeting-a", "meeting-b", "call-a"]
    assert [r.system_id for r in records] == ["sysM", "sysM", "sysC"]
    assert records[0].metrics == {"mos": 3.5} and records[1].metrics == {}
    first, _ = load_audio(records[0].path)
    np.testing.assert_array_equal(first, samples[4000:10000])  # floor(t * rate), end excluded
    second, _ = load_audio(records[1].path)
    np.testing.assert_array_equal(second, samples[8000:])  # end -1: to the end
    third, _ = load_audio(records[2].path)
    assert third.shape == (RATE - 800,)  # an end 0.3 s past the recording is clipped to it
    assert [r.duration for r in records] == [0.75, 1.0, 0.9]
    assert audio_duration(records[0].path) == 0.75


def test_segments_survive_a_rewrite_and_other_formats(tmp_path: Path) -> None:
    folder, samples = make_segments_dir(tmp_path)
    records = read_kaldi_dir(folder)
    copy = write_kaldi_dir(tmp_path / "copy", records)
    assert not (copy / "segments").exists()  # wav.scp now names the ranges themselves
    assert read_kaldi_dir(copy) == records
    track2 = write_track2_jsonl(tmp_path / "data.jsonl", records)
    again = load_records(track2)
    np.testing.assert_array_equal(load_audio(again[0].path)[0], samples[4000:10000])
    (copy / "segments").write_text("x meeting 0 1\n")  # a stale file must not re-cut them
    write_kaldi_dir(copy, records, force=True)
    assert not (copy / "segments").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("s1 meeting 0.5 3.0\n", "outside the recording"),  # 1 s past the end
        ("s1 meeting 1.5 1.0\n", "bad times"),
        ("s1 meeting 2.0 -1\n", "outside the recording"),
        ("s1 meeting x 1.0\n", "expected a number"),
        ("s1 meeting 0.5\n", "expected '<utt> <recording> <start> <end>'"),
        ("s1 lecture 0.5 1.0\n", "recording 'lecture' is not in wav.scp"),
    ],
)
def test_bad_segments_are_errors(tmp_path: Path, line: str, message: str) -> None:
    write_wav(tmp_path / "meeting.wav", 2.0)
    (tmp_path / "wav.scp").write_text("meeting meeting.wav\n")
    (tmp_path / "segments").write_text(line)
    with pytest.raises(DataFormatError, match=message):
        read_kaldi_dir(tmp_path)


def test_segment_side_files_are_keyed_by_segment(tmp_path: Path) -> None:
    folder, _ = make_segments_dir(tmp_path)
    (folder / "utt2sys").write_text("meeting sysM\n")  # a recording id, not a segment id
    with pytest.raises(DataFormatError, match="ids not in segments: meeting"):
        read_kaldi_dir(folder)
    (folder / "utt2sys").unlink()
    (folder / "rec" / "call.wav").unlink()
    with pytest.raises(DataFormatError, match="call-a: call.*does not exist"):
        read_kaldi_dir(folder)


# --- archives and pipes ------------------------------------------------------------------------


def write_wav_ark(path: Path, entries: dict[str, np.ndarray]) -> dict[str, int]:
    """A Kaldi wave archive as wav-copy writes it: ``<key> <RIFF bytes>`` per entry."""
    offsets = {}
    with open(path, "wb") as stream:
        for key, samples in entries.items():
            stream.write(f"{key} ".encode())
            offsets[key] = stream.tell()
            wav = io.BytesIO()
            soundfile.write(wav, samples, RATE, subtype="PCM_16", format="WAV")
            stream.write(wav.getvalue())
    return offsets


def test_archive_entries_are_read_with_kaldiio(tmp_path: Path) -> None:
    pytest.importorskip("kaldiio")
    rng = np.random.default_rng(5)
    signals = {key: rng.uniform(-0.5, 0.5, RATE).astype(np.float32) for key in ("u1", "u2")}
    offsets = write_wav_ark(tmp_path / "wav.ark", signals)
    lines = "".join(f"{key} wav.ark:{offset}\n" for key, offset in offsets.items())
    (tmp_path / "wav.scp").write_text(lines)  # relative archive path: against the directory
    records = read_kaldi_dir(tmp_path)
    assert records[1].path == f"{tmp_path / 'wav.ark'}:{offsets['u2']}"
    decoded, rate = load_audio(records[1].path)
    assert rate == RATE
    np.testing.assert_allclose(decoded, signals["u2"], atol=1 / 32768)
    assert audio_duration(records[0].path) == 1.0
    (tmp_path / "segments").write_text("u2-part u2 0.25 0.5\n")
    part = read_kaldi_dir(tmp_path)[0]
    np.testing.assert_array_equal(load_audio(part.path)[0], decoded[2000:4000])


def test_archives_without_kaldiio_are_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_wav_ark(tmp_path / "wav.ark", {"u1": np.full(RATE, 0.1, dtype=np.float32)})
    (tmp_path / "wav.scp").write_text("u1 wav.ark:3\n")
    monkeypatch.setattr(kaldi_audio, "kaldiio_available", lambda: False)
    with pytest.raises(DataFormatError, match=r"Kaldi archive entry; .*kaldiio"):
        read_kaldi_dir(tmp_path)
    with pytest.raises(UnreadableAudioError, match="kaldiio"):
        load_audio(f"{tmp_path / 'wav.ark'}:3")


def test_pipes_are_refused_and_never_run(tmp_path: Path) -> None:
    write_wav(tmp_path / "in.wav", 0.5)
    (tmp_path / "wav.scp").write_text(f"u1 sox {tmp_path / 'in.wav'} -t wav - |\n")
    with pytest.raises(DataFormatError, match="command pipe; .*never run"):
        read_kaldi_dir(tmp_path)
    with pytest.raises(UnreadableAudioError, match="command pipe is not run"):
        load_audio(f"sox {tmp_path / 'in.wav'} -t wav - |")


def test_a_file_whose_name_looks_extended_is_that_file(tmp_path: Path) -> None:
    samples = write_wav(tmp_path / "take[1:2].wav", 0.5)
    plain, _ = load_audio(tmp_path / "take[1:2].wav")
    np.testing.assert_array_equal(plain, samples)
    ranged = kaldi_audio.with_range(str(tmp_path / "take[1:2].wav"), 100, 200)
    assert load_audio(ranged, min_duration=0.0)[0].shape == (100,)
    with pytest.raises(UnreadableAudioError, match="outside"):
        load_audio(kaldi_audio.with_range(str(tmp_path / "take[1:2].wav"), 0, RATE))
