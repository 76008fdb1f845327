"""URGENT-PK pairwise ranking models and ECS system-level ranking (builds on ``sqa``)."""
