"""Challenge scoring on top of ``sqa score`` tables: URGENT categories and CCF-AATC points.

- :mod:`sqa.challenge.tables`: read and merge per-file tables, per-system (and per-type) means.
- :mod:`sqa.challenge.presets`: URGENT 2024/2025/2026 category maps and YAML maps.
- :mod:`sqa.challenge.urgent`: the URGENT table (ranks from :func:`sqa.stats.rank_systems`).
- :mod:`sqa.challenge.ccf`: the CCF-AATC 2025 objective score (rank points + parameter tiers).
- :mod:`sqa.challenge.human`: system-level agreement of every metric with human ratings.

:func:`score_challenge` is the one pure entry point (used by ``sqa challenge-score`` and by
reports): tables in, :class:`ChallengeResult` out.
"""

from __future__ import annotations

from sqa.challenge.scoring import ChallengeResult, score_challenge

__all__ = ["ChallengeResult", "score_challenge"]
