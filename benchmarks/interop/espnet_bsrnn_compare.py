"""Compare our imported BSRNN with ESPnet's saved output (run by espnet_env.sh, our environment).

Usage: python espnet_bsrnn_compare.py DIR   (DIR holds imported.pt and reference.pt)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sqa.checkpoint import load_model

TOLERANCE = 1e-4


def main() -> int:
    folder = Path(sys.argv[1])
    model = load_model(folder / "imported.pt").eval()
    reference = torch.load(folder / "reference.pt", weights_only=True)
    worst = 0.0
    for key in sorted(name for name in reference if name.startswith("input_")):
        rate = int(key.split("_")[1])
        with torch.no_grad():
            ours = model(reference[key], sample_rate=rate)
        difference = float((ours - reference[f"output_{rate}"]).abs().max())
        worst = max(worst, difference)
        print(f"{folder.name} {rate} Hz: max |ours - espnet| = {difference:.2e}")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
