"""``sqa track2``: URGENT 2026 Track-2 (MOS prediction) submissions.

* ``template``: write a README.yaml to complete (``--checkpoint`` fills architecture, size, loss).
* ``submit``: build ``submission.zip`` (``mos.scp`` + README.yaml) from predictions or from a
  checkpoint run on a dataset, validating it before anything is written.
* ``validate``: check an existing zip (ids against ``--data`` when given).
* ``rank``: rank several submissions against labelled data with the official 3-category procedure.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from sqa.commands.options import add_path_argument
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import atomic_open, check_writable, write_rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sqa track2", description="URGENT 2026 Track-2 tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    template = commands.add_parser("template", help="write a README.yaml template")
    template.add_argument("--output", default="README.yaml", help="where to write the template")
    template.add_argument("--checkpoint", help="fill model fields from this predictor")
    template.add_argument("--force", action="store_true", help="overwrite the output")
    submit = commands.add_parser("submit", help="build and validate a submission zip")
    submit.add_argument("--predictions", help="sqa predict output (.jsonl/.csv) or a mos.scp")
    submit.add_argument("--checkpoint", help="predictor to run on --data instead")
    submit.add_argument("--data", help="Track-2 data.jsonl (ids to check; input for --checkpoint)")
    submit.add_argument("--metric", help="head / prediction key to submit (default: mos)")
    submit.add_argument("--readme", required=True, help="completed README.yaml")
    submit.add_argument("--output", required=True, help="submission .zip")
    submit.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda")
    submit.add_argument("--force", action="store_true", help="overwrite the output")
    add_path_argument(submit)
    validate = commands.add_parser("validate", help="check a submission zip")
    validate.add_argument("submission", help="the submission .zip")
    validate.add_argument("--data", help="dataset whose sample ids the zip must cover exactly")
    add_path_argument(validate)
    rank = commands.add_parser("rank", help="rank submissions (error / linear / rank categories)")
    rank.add_argument("--submission", action="append", required=True, metavar="NAME=PATH",
                      help="zip, mos.scp or predictions table (repeatable)")  # fmt: skip
    rank.add_argument("--ref", required=True, help="labelled data (data.jsonl, Kaldi dir, CSV)")
    rank.add_argument("--metric", default="mos", help="reference label (default: mos)")
    rank.add_argument("--output", help="ranking table (.csv or .jsonl)")
    rank.add_argument(
        "--ranking",
        choices=("official", "average"),
        default="official",
        help="official (default): rank each category average again before averaging, as the "
        "challenge's pseudo-code; average: average the category averages directly",
    )
    rank.add_argument("--force", action="store_true", help="overwrite the output")
    add_path_argument(rank)
    return parser


def _template(arguments: argparse.Namespace) -> int:
    from sqa.track2.submission import readme_template

    destination = check_writable(arguments.output, arguments.force)
    model = None
    if arguments.checkpoint:
        from sqa.predictors.loading import load_predictor

        model = load_predictor(arguments.checkpoint)
    with atomic_open(destination) as stream:
        stream.write(readme_template(model))
    print(f"sqa track2: wrote {destination}; fill in the team and data fields", file=sys.stderr)
    return 0


def _scores_from_checkpoint(arguments: argparse.Namespace) -> dict[str, float]:
    from tqdm import tqdm

    from sqa.data import read_track2_jsonl
    from sqa.predictors.inference import PredictionSettings, predict_batches
    from sqa.predictors.loading import load_predictor

    model = load_predictor(arguments.checkpoint, arguments.device)
    # Without --metric: the model's declared overall head, else its "mos" head.
    metric = arguments.metric or getattr(model.config, "overall_metric", "") or "mos"
    if metric not in model.metric_names:
        raise SqaError(
            f"the checkpoint has no '{metric}' head (available: {', '.join(model.metric_names)}); "
            "choose one explicitly with --metric"
        )
    records = read_track2_jsonl(arguments.data)
    failures: list[str] = []
    settings = PredictionSettings(device=arguments.device, metrics=[metric])
    with tqdm(total=len(records), unit="file", file=sys.stderr) as bar:
        found = {
            record.sample_id: scores[metric]
            for record, scores in predict_batches(
                model,
                records,
                settings,
                lambda r, m: failures.append(f"{r.sample_id}: {m}"),
                bar.update,
            )
        }
    if failures:
        raise DataFormatError(
            f"{len(failures)} files could not be scored: " + "; ".join(failures[:3])
        )
    return {record.sample_id: found[record.sample_id] for record in records}


def _scores_from_predictions(arguments: argparse.Namespace) -> dict[str, float]:
    from sqa.track2.evaluation import prediction_table
    from sqa.track2.submission import read_submission_scores

    if Path(arguments.predictions).suffix.lower() in (".scp", ".zip"):
        return read_submission_scores(arguments.predictions)
    table = prediction_table(arguments.predictions)
    metric = arguments.metric or "mos"
    available = sorted({name for row in table.values() for name in row})
    if metric not in available:
        raise SqaError(
            f"the predictions have no '{metric}' values (available: {', '.join(available)}); "
            "choose one explicitly with --metric"
        )
    scores: dict[str, float] = {}
    for (_, sample), row in table.items():
        if sample in scores:
            raise DataFormatError(
                f"sample id {sample!r} repeats across systems; mos.scp needs unique ids"
            )
        scores[sample] = row.get(metric, math.nan)
    return scores


def _submit(arguments: argparse.Namespace) -> int:
    from sqa.track2.submission import expected_sample_ids, write_submission

    if bool(arguments.predictions) == bool(arguments.checkpoint):
        raise SqaError("give either --predictions or --checkpoint (with --data)")
    if arguments.checkpoint and not arguments.data:
        raise SqaError("--checkpoint needs --data (the Track-2 data.jsonl to score)")
    check_writable(arguments.output, arguments.force)
    readme_text = Path(arguments.readme).read_text(encoding="utf-8")
    expected = None
    if arguments.data:
        from sqa.data import read_track2_jsonl

        expected = expected_sample_ids(read_track2_jsonl(arguments.data))
    if arguments.checkpoint:
        scores = _scores_from_checkpoint(arguments)
    else:
        scores = _scores_from_predictions(arguments)
    if expected is not None:
        scores = {i: scores[i] for i in expected if i in scores} | scores
    write_submission(arguments.output, scores, readme_text, expected, force=arguments.force)
    print(f"sqa track2: {len(scores)} scores -> {arguments.output} (validated)", file=sys.stderr)
    return 0


def _validate(arguments: argparse.Namespace) -> int:
    from sqa.track2.submission import expected_sample_ids, validate_submission

    expected = None
    if arguments.data:
        from sqa.data import load_records

        expected = expected_sample_ids(load_records(arguments.data))
    problems = validate_submission(arguments.submission, expected)
    if problems:
        from sqa.data.track2 import summarise_problems

        raise DataFormatError(f"{arguments.submission} is invalid: {summarise_problems(problems)}")
    print(f"sqa track2: {arguments.submission} is valid")
    return 0


def _rank(arguments: argparse.Namespace) -> int:
    from sqa.data import load_records
    from sqa.track2.submission import RANKING_CATEGORIES, rank_submissions, read_submission_scores

    if arguments.output:
        check_writable(arguments.output, arguments.force)
    submissions = {}
    for item in arguments.submission:
        name, separator, path = item.partition("=")
        if not separator or not name or not path:
            raise SqaError(f"--submission expects NAME=PATH, got {item!r}")
        if name in submissions:
            raise SqaError(f"submission name {name!r} given twice")
        submissions[name] = read_submission_scores(path, arguments.metric)
    statistics, ranking = rank_submissions(
        submissions,
        load_records(arguments.ref),
        arguments.metric,
        rerank_categories=arguments.ranking == "official",
    )
    rows = []
    for name, overall, rank in ranking.ordered():
        categories = {f"rank_{c}": ranking.category_ranks[c][name] for c in RANKING_CATEGORIES}
        rows.append(
            {"rank": rank, "submission": name, "overall": overall, **categories, **statistics[name]}
        )
    for row in rows:
        print(f"{row['rank']:>3}  {row['submission']:<24} overall {row['overall']:.3f}  "
              f"utt_srcc {row['utt_srcc']:.4f}  sys_srcc {row['sys_srcc']:.4f}")  # fmt: skip
    if arguments.output:
        write_rows(arguments.output, rows, force=arguments.force)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """URGENT 2026 Track-2 submissions."""
    arguments = build_parser().parse_args(argv)
    handlers = {"template": _template, "submit": _submit, "validate": _validate, "rank": _rank}
    return handlers[arguments.command](arguments)
