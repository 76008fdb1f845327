"""HTML reports: figures, the page, each source's builder, the CLI wiring, a Chromium screenshot."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from sqa.cli import main as sqa_main
from sqa.data import AudioRecord
from sqa.data.track2 import write_track2_jsonl
from sqa.errors import MissingDependencyError
from sqa.report.html import render_report
from sqa.report.sections import rank_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}
EVIL = "<script>alert(1)</script>"


class PageParser(HTMLParser):
    """Collects images, headings and text, and checks that every tag is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[dict[str, str]] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({key: value or "" for key, value in attrs})
        if tag == "script":
            self.errors.append("a <script> element")
        if tag not in VOID:
            self.stack.append(tag)
        self._in_heading = tag in ("h1", "h2", "h3")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")
        self._in_heading = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_heading:
            self.headings.append(data.strip())


def parse_page(path: Path) -> PageParser:
    """Parse a report and check what every report must satisfy."""
    page = path.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert "http://" not in page and "https://" not in page
    assert "Skipped files and warnings" in parser.headings
    for image in parser.images:
        assert image["src"].startswith("data:image/png;base64,") and image["alt"]
        png = base64.b64decode(image["src"].split(",", 1)[1])
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    return parser


def ranking_rows(names: list[str]) -> list[dict]:
    return [
        {"rank": index + 1, "system": name, "rank_ci_low": max(1, index), "rank_ci_high": index + 2}
        for index, name in enumerate(names)
    ]


def test_rank_report_is_self_contained_and_escapes_input_strings(tmp_path: Path) -> None:
    names = ["good", EVIL, "bad"]
    matrix = np.array([[0.5, 0.8, 0.9], [0.2, 0.5, 0.7], [0.1, 0.3, 0.5]])
    built = rank_report(ranking_rows(names), names, matrix, [f"{EVIL}/u1: broken"], ["a note"])
    path = tmp_path / "r.html"
    path.write_text(render_report(built), encoding="utf-8")
    page = parse_page(path)
    assert len(page.images) == 2
    assert "Ranking" in page.headings and "Skipped files (1)" in page.headings
    assert EVIL in "".join(page.text)  # shown as text: the parser met no <script> element
    assert "&lt;script&gt;" in path.read_text()


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqa.report.figures import new_figure

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match=r"sqa-suite\[report\]"):
        new_figure()


def test_missing_matplotlib_fails_before_the_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sqa.report.html import check_report_path

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError):
        check_report_path(str(tmp_path / "r.html"), force=False)
    assert not (tmp_path / "r.html").exists()


@pytest.fixture(scope="module")
def rank_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sqa.synthetic import write_system_folders

    root = tmp_path_factory.mktemp("rank")
    quality = {"s1": 4.5, "s2": 3.5, "s3": 2.5}
    write_system_folders(root / "systems", {s: 20.0 for s in quality}, utterances=3, duration=0.3)
    lines = ["system_id,sample_id,dnsmos_ovrl"]
    lines += [f"{s},utt{i:03d},{q + 0.2 * i}" for s, q in quality.items() for i in range(3)]
    (root / "scores.csv").write_text("\n".join(lines) + "\n")
    return root


def test_rank_command_writes_a_report_without_output(
    rank_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["rank", "--root", str(rank_folder / "systems"), "--ref-dir", "_reference"]
    command += ["--scores", str(rank_folder / "scores.csv"), "--bootstrap", "20"]
    assert sqa_main(command) != 0
    assert "give --output TABLE and/or --report FILE.html" in capsys.readouterr().err
    report = tmp_path / "r.html"
    assert sqa_main([*command, "--report", str(report)]) == 0
    page = parse_page(report)
    assert len(page.images) == 2 and "s3" in "".join(page.text)
    assert "reference folder(s) _reference" in "".join(page.text)  # a warning of the run
    assert sqa_main([*command, "--report", str(report)]) != 0
    assert "pass --force" in capsys.readouterr().err
    assert sqa_main([*command, "--report", str(report), "--force"]) == 0


def test_challenge_score_report(tmp_path: Path) -> None:
    lines = ["system_id,sample_id,dnsmos_ovrl,pesq,mcd"]
    for index, system in enumerate(["noisy", EVIL, "best"]):
        lines += [
            f"{system},u{u},{1 + index + 0.1 * u},{1.5 + index},{9 - index}" for u in range(3)
        ]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    report = tmp_path / "c.html"
    command = ["challenge-score", "--scores", str(tmp_path / "scores.csv"), "--resamples", "5"]
    assert sqa_main([*command, "--report", str(report)]) == 0
    page = parse_page(report)
    assert len(page.images) == 1 and any("ranking" in h for h in page.headings)
    text = "".join(page.text)
    assert "rank_pesq" in text and EVIL in text and "left out" in text


def test_evaluate_report_and_plots(tmp_path: Path) -> None:
    systems = ["a", "a", "b", "b", "c", "c"]
    labels = [3.0, 2.5, 4.0, 1.5, 4.5, 2.0]
    references = [
        AudioRecord(f"u{i}", s, f"/nowhere/{i}.wav", metrics={"mos": y})
        for i, (s, y) in enumerate(zip(systems, labels, strict=True))
    ]
    reference = write_track2_jsonl(tmp_path / "ref.jsonl", references)
    rows = [
        {"sample_id": f"u{i}", "system_id": s, "metrics": {"mos": y + 0.3 * (-1) ** i}}
        for i, (s, y) in enumerate(zip(systems, labels, strict=True))
    ]
    prediction = tmp_path / "pred.jsonl"
    prediction.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report, plots = tmp_path / "e.html", tmp_path / "plots"
    command = ["evaluate", "--pred", str(prediction), "--ref", str(reference)]
    assert sqa_main([*command, "--report", str(report), "--plot", str(plots)]) == 0
    page = parse_page(report)
    assert len(page.images) == 2
    assert sorted(path.name for path in plots.iterdir()) == ["mos_system.png", "mos_utterance.png"]
    assert (plots / "mos_system.png").read_bytes().startswith(PNG_SIGNATURE)


def test_report_of_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    log = [
        {"step": 2, "epoch": 0, "train_loss": 2.4, "lr": 0.001},
        {"step": 2, "validation": {"loss": 0.6, "metrics": {"mos": {"utt_lcc": 0.5}}}},
        {"step": 4, "epoch": 1, "train_loss": 1.1, "lr": 0.0005},
        {"step": 4, "validation": {"loss": 0.4, "metrics": {"mos": {"utt_lcc": 0.7}}}},
    ]
    lines = [json.dumps(row) for row in log] + ['{"step": 5, "torn']
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")
    (run / "config.yaml").write_text("model:\n  width: 8\nseed: 3\n")
    report = tmp_path / "run.html"
    assert sqa_main(["report", "--run", str(run), "--output", str(report)]) == 0
    page = parse_page(report)
    assert len(page.images) == 3  # losses, correlations, learning rate
    text = "".join(page.text)
    assert "model.width" in text and "torn write" in text and "environment.json" in text
    assert sqa_main(["report", "--run", str(tmp_path), "--output", str(tmp_path / "x.html")]) != 0
    assert "no log.jsonl" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_chromium_renders_the_rank_report(rank_folder: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    report, screenshot = tmp_path / "r.html", tmp_path / "shot.png"
    command = ["rank", "--root", str(rank_folder / "systems"), "--ref-dir", "_reference"]
    command += ["--scores", str(rank_folder / "scores.csv"), "--bootstrap", "20"]
    assert sqa_main([*command, "--report", str(report)]) == 0
    subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={screenshot}", "--window-size=1200,1600", report.as_uri(),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    figures = pixels[200:900, :800]  # where the ranking plot and heat map are laid out
    not_white = (figures < 0.95).any(axis=-1).mean()
    colours = len(np.unique((figures * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert not_white > 0.05 and colours > 50
