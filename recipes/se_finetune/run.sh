#!/usr/bin/env bash
# SQA-guided speech-enhancement fine-tuning recipe (see README.md in this folder).
#   stage 1: pre-train a compact BSRNN with L_spec on simulated data
#   stage 2: fine-tune it with L_spec + L_score + L_feat (+ L_reg on real data)
#   stage 3: enhance a folder with the result
#   stage 4: the small-scale evidence table (pre-train + one fine-tuning run per loss row)
# Usage: recipes/se_finetune/run.sh [first_stage] [last_stage]   (run from the repository root)
set -euo pipefail
first=${1:-1}
last=${2:-3}
work=${WORK:-exp/se_finetune_evidence}
sqa=${SQA:-.venv/bin/sqa}
here=recipes/se_finetune

if [ "$first" -le 1 ] && [ "$last" -ge 1 ]; then
  "$sqa" finetune --config "$here/pretrain.yaml" --progress --resume
fi
if [ "$first" -le 2 ] && [ "$last" -ge 2 ]; then
  "$sqa" finetune --config "$here/config.yaml" --progress --resume
fi
if [ "$first" -le 3 ] && [ "$last" -ge 3 ]; then
  "$sqa" simulate --speech ../shared/data/speech --noise ../shared/data/noise \
    --rir ../shared/data/rir --output exp/se_demo --count 8 --seed 2000000 --force
  "$sqa" enhance --model exp/se_finetune/last.pt --input exp/se_demo/noisy \
    --output exp/se_demo/enhanced --force
fi
if [ "$first" -le 4 ] && [ "$last" -ge 4 ]; then
  python=${PYTHON:-.venv/bin/python}
  # "real" reference-free clips: degraded LJSpeech with the EMGSE test noises, references dropped
  "$sqa" simulate --speech ../shared/data/speech/ljspeech --noise ../shared/data/noise/emgse_test \
    --output "$work/real_sim" --count 24 --duration 1 --seed 3000000 --force
  mkdir -p "$work/real" && cp "$work"/real_sim/noisy/*.wav "$work/real/"
  "$python" recipes/se_finetune/evidence.py pretrain --work "$work" --data ../shared/data --pretrain-steps 1150
  # CRITIC=exp/universa/run_distillmos/best.pt: rows with a trained predictor as the critic
  "$python" recipes/se_finetune/evidence.py rows --work "$work" --data ../shared/data --critic "${CRITIC:-dnsmos}"
  "$python" recipes/se_finetune/evidence.py table --work "$work"
fi
