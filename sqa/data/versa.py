"""VERSA result files: per-utterance metric rows keyed by the audio's id, joined with the audio.

VERSA's scorer (``versa/bin/scorer.py --output_file``, and the ``utt_result.txt`` /
``result.<n>.txt`` files of its launcher) writes one object per line: ``{"key": "<id>",
"<metric>": value, ...}``; JSON in current releases, a Python ``dict`` literal (single quotes,
bare ``nan``, ``np.float64(...)``) in older ones. Both are read. The rows carry no audio path: the
``key`` is the id of the ``wav.scp`` given to VERSA as ``--pred`` (or, for ``--pred DIR``, the
audio file's name), so the same listing must be given to join them (:func:`read_versa_results`).

Names: :data:`VERSA_NAMES` maps VERSA's names to this suite's registry keys where both measure
the same thing (the labels can then train the predictor's heads of that name). Every other
numeric field is kept under its own name (``stoi``, ``utmosv2``, ``f0_corr``, ...; listed in one
warning), except a name that equals a registry key of a different definition, which gets the
prefix ``versa_`` (``mcd``: VERSA's default mel-cepstrum order 39, alpha 0.466 and no DTW are not
this suite's ``mcd``). Non-numeric fields (transcripts, language, VAD segments) are skipped;
``NaN``/``null`` values are missing labels. VERSA writes 0.0 for a failed PESQ or
SpeechBERTScore/BLEU/token distance; such exact zeros of :data:`FAILED_AS_ZERO` are read as
missing (and counted in a warning), since the suite never stores a failure as 0.0.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqa.audio import is_audio_file
from sqa.data.kaldi import read_kaldi_entries
from sqa.data.records import AudioRecord, check_unique
from sqa.errors import DataFormatError
from sqa.metrics.registry import METRIC_SPECS

VERSA_NAMES: dict[str, str] = {
    "dns_overall": "dnsmos_ovrl",  # VERSA's code; its metric table says dnsmos_overall
    "dnsmos_overall": "dnsmos_ovrl",
    "dns_p808": "dnsmos_p808",
    "dnsmos_p808": "dnsmos_p808",
    "plcmos": "plcmos",
    "utmos": "utmos",
    "nisqa_mos_pred": "nisqa_mos",
    "nisqa_noi_pred": "nisqa_noi",
    "nisqa_dis_pred": "nisqa_dis",
    "nisqa_col_pred": "nisqa_col",
    "nisqa_loud_pred": "nisqa_loud",
    "SIGMOS_COL": "sigmos_col",
    "SIGMOS_DISC": "sigmos_disc",
    "SIGMOS_LOUD": "sigmos_loud",
    "SIGMOS_REVERB": "sigmos_reverb",
    "SIGMOS_SIG": "sigmos_sig",
    "SIGMOS_OVRL": "sigmos_ovrl",
    "scoreq_nr": "scoreq",  # the registry's scoreq is the no-reference mode
    "pesq": "pesq",
    "estoi": "estoi",  # VERSA's "stoi" is classic STOI and stays "stoi"
    "sdr": "sdr",
    "si_snr": "si_snr",
    "si-snr": "si_snr",
    "speech_bert": "sbert",
    "spk_similarity": "spksim",
}
FAILED_AS_ZERO = frozenset({"pesq", "speech_bert", "speech_bleu", "speech_token_distance"})
_SPECIAL = {"nan": math.nan, "NaN": math.nan, "inf": math.inf, "Infinity": math.inf}
_NUMBER_CALL = re.compile(r"^(float|int)(16|32|64|128)?$")


def suite_name(name: str, names: Mapping[str, str] = VERSA_NAMES) -> str:
    """The metric name a VERSA field is stored under (see the module docstring)."""
    if name in names:
        return names[name]
    return f"versa_{name}" if name in METRIC_SPECS else name


def _literal(node: ast.AST) -> Any:
    """Evaluate the constant subset of Python that VERSA's old ``dict`` lines use."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(element) for element in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name) and node.id in _SPECIAL:
        return _SPECIAL[node.id]
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        function = node.func.attr if isinstance(node.func, ast.Attribute) else None
        function = node.func.id if isinstance(node.func, ast.Name) else function
        if function and _NUMBER_CALL.match(function):  # float('nan'), np.float64(3.2)
            return float(_literal(node.args[0]))
    raise ValueError(f"unsupported expression {ast.dump(node)[:60]}")


def parse_versa_line(line: str) -> object:
    """Decode one result line: JSON first, else an old-style Python ``dict`` literal.

    Raises:
        ValueError: Neither.
    """
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        pass
    try:
        return _literal(ast.parse(line.strip(), mode="eval").body)
    except (SyntaxError, ValueError, TypeError) as error:
        raise ValueError(f"not JSON or a Python dict literal ({error})") from None


def is_versa_results(path: str | os.PathLike[str]) -> bool:
    """Whether the first non-empty line of ``path`` is a VERSA row (``key``, no ``audio_path``)."""
    try:
        with open(path, encoding="utf-8") as stream:
            line = next((text for text in stream if text.strip()), "")
        row = parse_versa_line(line) if len(line) < 1_000_000 else None
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(row, dict) and "key" in row and not {"audio_path", "sample_id"} & set(row)


def _row_metrics(
    row: Mapping[str, Any], where: str, names: Mapping[str, str], notes: dict[str, set[str]]
) -> dict[str, float]:
    """The numeric fields of a row under suite names; ``notes`` collects renamed/dropped ones."""
    metrics: dict[str, float] = {}
    for name, value in row.items():
        if name == "key" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            continue
        if value == 0.0 and name in FAILED_AS_ZERO:
            notes["zero"].add(name)
            continue
        target = suite_name(name, names)
        if name not in names:
            notes["kept"].add(f"{name}->{target}" if target != name else name)
        previous = metrics.setdefault(target, float(value))
        if previous != float(value):
            raise DataFormatError(f"{where}: {name}={value} disagrees with {target}={previous}")
    return metrics


def read_versa_rows(
    path: str | os.PathLike[str], names: Mapping[str, str] = VERSA_NAMES
) -> dict[str, dict[str, float]]:
    """Read a VERSA result file as ``key -> metrics`` (file order), warning about renamed fields.

    Raises:
        DataFormatError: A missing file, an undecodable line, a row without ``key``, a repeated
            key or two fields that map to one name with different values.
    """
    source = Path(path)
    if not source.is_file():
        raise DataFormatError(f"{source}: file does not exist")
    rows: dict[str, dict[str, float]] = {}
    notes: dict[str, set[str]] = {"kept": set(), "zero": set()}
    with open(source, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            where = f"{source}:{number}"
            try:
                row = parse_versa_line(line)
            except ValueError as error:
                raise DataFormatError(f"{where}: {error}") from None
            if not isinstance(row, dict) or "key" not in row:
                raise DataFormatError(f"{where}: expected an object with a 'key'")
            key = str(row["key"])
            if key in rows:
                raise DataFormatError(f"{where}: duplicate key {key!r}")
            rows[key] = _row_metrics(row, where, names, notes)
    _warn(source, notes)
    return rows


def _warn(source: Path, notes: dict[str, set[str]]) -> None:
    if notes["kept"]:
        kept = ", ".join(sorted(notes["kept"]))
        warnings.warn(f"{source}: VERSA fields without a suite key, kept as {kept}", stacklevel=4)
    if notes["zero"]:
        zero = ", ".join(sorted(notes["zero"]))
        warnings.warn(
            f"{source}: exact 0.0 values of {zero} (VERSA's value for a failed metric) read as "
            "missing",
            stacklevel=4,
        )


def _audio_index(audio: Path) -> dict[str, AudioRecord]:
    """Records of the listing VERSA scored, by the key VERSA gives them."""
    if audio.is_file() and audio.name == "wav.scp":
        audio = audio.parent
    if (audio / "wav.scp").is_file():
        return dict(read_kaldi_entries(audio))
    if not audio.is_dir():
        raise DataFormatError(f"{audio}: expected the wav.scp, Kaldi dir or folder VERSA scored")
    index: dict[str, AudioRecord] = {}
    for path in sorted(audio.rglob("*")):
        if path.is_file() and is_audio_file(path):
            if path.name in index:
                raise DataFormatError(f"{audio}: two audio files named {path.name}")
            index[path.name] = AudioRecord(path.stem, audio.resolve().name, str(path))
    return index


def read_versa_results(
    path: str | os.PathLike[str],
    audio: str | os.PathLike[str],
    *,
    names: Mapping[str, str] | None = None,
) -> list[AudioRecord]:
    """Read VERSA results as records, with the audio of the listing VERSA scored.

    Args:
        path: The result file (JSON lines or old-style ``dict`` lines).
        audio: What VERSA got as ``--pred``: a ``wav.scp`` or Kaldi dir (keys are its ids;
            system ids, durations and labels come from it too) or a folder of audio files (keys
            are file names such as ``a.wav``; the system id is the folder's name).
        names: VERSA name -> suite name entries that replace or extend :data:`VERSA_NAMES`.

    Returns:
        One record per result row (file order); VERSA's metrics are merged into the listing's
        labels.

    Raises:
        DataFormatError: Bad rows, keys absent from ``audio``, a VERSA value that disagrees with
            a label of the listing, or duplicate ``(system_id, sample_id)`` keys.
    """
    rows = read_versa_rows(path, {**VERSA_NAMES, **(names or {})})
    index = _audio_index(Path(audio))
    absent = [key for key in rows if key not in index]
    if absent:
        raise DataFormatError(
            f"{path}: {len(absent)} key(s) not in {audio}, e.g. {', '.join(absent[:3])}"
        )
    records = []
    for key, metrics in rows.items():
        base = index[key]
        clash = [n for n, v in metrics.items() if base.metrics.get(n, v) != v]
        if clash:
            raise DataFormatError(f"{path}: {key}: {clash[0]} disagrees with {audio}")
        records.append(replace(base, metrics={**base.metrics, **metrics}))
    check_unique(records, str(path))
    return records
