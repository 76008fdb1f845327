"""BSRNN restorer, degradation simulation and SQA-guided fine-tuning (builds on ``sqa``)."""
