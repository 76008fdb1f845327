#!/usr/bin/env bash
# Parity of `sqa import espnet-bsrnn` against ESPnet's own BSRNN (issue 15).
#
# espnet cannot join the one-command install (its releases pin an old setuptools), so this builds
# a side environment, lets ESPnet build its STFT encoder / BSRNN separator / STFT decoder with
# random weights (espnet_bsrnn_reference.py), saves them in ESPnet's model.pth + config.yaml
# layout, imports them with our command and compares our restorer's output with ESPnet's at 16 and
# 48 kHz (espnet_bsrnn_compare.py, tolerance 1e-4).
#
# Usage: bash benchmarks/interop/espnet_env.sh [WORK_DIR]
#   ESPNET_ENV   side venv (default /tmp/espnet-env; reused when it already has espnet)
#   ESPNET_VERSION  espnet release (default 202511)
#   SQA_PYTHON   interpreter with sqa-suite installed (default: python3 on PATH)
#   CONSTRAINTS  pip constraints file pinning torch (default: constraints.txt of this checkout)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${1:-/tmp/espnet-parity}"
ESPNET_ENV="${ESPNET_ENV:-/tmp/espnet-env}"
ESPNET_VERSION="${ESPNET_VERSION:-202511}"
SQA_PYTHON="${SQA_PYTHON:-python3}"
CONSTRAINTS="${CONSTRAINTS:-$ROOT/constraints.txt}"

if ! "$ESPNET_ENV/bin/python" -c "import espnet2.enh.separator.bsrnn_separator" 2>/dev/null; then
    python3 -m venv "$ESPNET_ENV"
    "$ESPNET_ENV/bin/pip" install -q -c "$CONSTRAINTS" "torch==2.13.0" numpy pyyaml
    # --no-deps: espnet's own requirements pin an old setuptools and pull in the whole toolkit;
    # the enhancement modules used here only need the few packages below.
    "$ESPNET_ENV/bin/pip" install -q --no-deps "espnet==$ESPNET_VERSION"
    "$ESPNET_ENV/bin/pip" install -q -c "$CONSTRAINTS" typeguard torch_complex packaging librosa \
        humanfriendly
fi

IMPORT='import sys
from sqa.cli import run_command
from sqa.commands.import_checkpoint import main
sys.exit(run_command("import", main, sys.argv[1:]))'
mkdir -p "$WORK"
"$ESPNET_ENV/bin/python" "$HERE/espnet_bsrnn_reference.py" --output "$WORK/full"
"$ESPNET_ENV/bin/python" "$HERE/espnet_bsrnn_reference.py" --output "$WORK/tiny" --tiny
for size in full tiny; do
    # `sqa import` through its entry function, so an install made before the subcommand existed works
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$SQA_PYTHON" -c "$IMPORT" espnet-bsrnn \
        "$WORK/$size/model.pth" "$WORK/$size/config.yaml" --output "$WORK/$size/imported.pt" --force
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$SQA_PYTHON" "$HERE/espnet_bsrnn_compare.py" \
        "$WORK/$size"
done
echo "espnet $("$ESPNET_ENV/bin/python" -c 'import espnet; print(espnet.__version__)'): parity OK"
