"""The URGENT 2026 Track-2 challenge without any model: submissions and their evaluation.

* :mod:`sqa.track2.submission`: the submission zip (``predictions.txt`` + ``README.yaml``), its
  checks, and the organisers' re-ranked categories;
* :mod:`sqa.track2.evaluation`: the official evaluator's MSE/LCC/SRCC/KTAU over prediction tables.

The data format (``data.jsonl``, ``mos.scp``) lives with the other listings in
:mod:`sqa.data.track2` and the statistics in :mod:`sqa.stats`; both modules here import neither
torch nor a predictor, so scoring a submission needs no model.
"""
