#!/usr/bin/env bash
# Uni-VERSA-Ext-style predictor trained on teacher labels (see README.md in this folder).
#   stage 1: split ../shared speech and noise into train / held-out pools (symbolic links)
#   stage 2: simulate degraded/clean pairs (train, valid and test from disjoint pools and seeds)
#   stage 3: label every degraded file with the offline teachers (`sqa score`)
#   stage 4: train the predictor (`sqa train-predictor --config config.yaml`, resumable)
#   stage 5: predict the test set and evaluate against the teacher labels (`sqa evaluate`)
# Usage: recipes/universa/run.sh [first_stage] [last_stage]   (run from the repository root)
set -euo pipefail
first=${1:-1}
last=${2:-5}
data=${DATA:-../shared/data}
work=exp/universa
sqa=${SQA:-.venv/bin/sqa}
jobs=${JOBS:-2}
metrics=pesq,estoi,sdr,si_snr,lsd,dnsmos_ovrl,distill_mos
here=recipes/universa
run() { [ "$first" -le "$1" ] && [ "$last" -ge "$1" ]; }

if run 1; then
  # Held out: FSDD speaker "yweweler" and the mixed-corpus folder for speech; the small MIT/Apache/CC
  # noise folders for noise. Everything else trains.
  rm -rf "$work/pools" && mkdir -p "$work"/pools/{speech,noise}_{train,heldout}
  for file in "$data"/speech/fsdd/*.wav "$data"/speech/ljspeech/*.wav; do
    case "$file" in *_yweweler_*) pool=heldout ;; *) pool=train ;; esac
    ln -s "$(realpath "$file")" "$work/pools/speech_$pool/"
  done
  for file in "$data"/speech/misc/*; do ln -s "$(realpath "$file")" "$work/pools/speech_heldout/"; done
  for folder in hu100 emgse_test; do
    for file in "$data/noise/$folder"/*; do ln -s "$(realpath "$file")" "$work/pools/noise_train/"; done
  done
  for folder in speechbrain pyroomacoustics audiomentations; do
    for file in "$data/noise/$folder"/*; do ln -s "$(realpath "$file")" "$work/pools/noise_heldout/"; done
  done
fi
if run 2; then
  "$sqa" simulate --speech "$work/pools/speech_train" --noise "$work/pools/noise_train" \
    --rir "$data/rir" --output "$work/sim_train" --count "${TRAIN_COUNT:-1000}" --seed 0 \
    --duration 3 --force
  "$sqa" simulate --speech "$work/pools/speech_heldout" --noise "$work/pools/noise_heldout" \
    --rir "$data/rir" --output "$work/sim_valid" --count "${VALID_COUNT:-150}" --seed 1000000 \
    --duration 3 --force
  "$sqa" simulate --speech "$work/pools/speech_heldout" --noise "$work/pools/noise_heldout" \
    --rir "$data/rir" --output "$work/sim_test" --count "${TEST_COUNT:-250}" --seed 2000000 \
    --duration 3 --force
fi
if run 3; then
  for split in train valid test; do
    # --resume: an interrupted labelling run continues where it stopped
    "$sqa" score --systems "$work/sim_$split/noisy" --ref-dir "$work/sim_$split/clean" \
      --metrics "$metrics" --dnsmos-mode fast --jobs "$jobs" --resume \
      --output "$work/labels_$split.jsonl"
  done
fi
# CONFIG=distillmos.yaml: the Distill-MOS-feature variant (its own run folder, see output_dir)
config=$here/${CONFIG:-config.yaml}
run_dir=$(sed -n 's/^output_dir: *//p' "$config")
if run 4; then
  resume=()
  [ -f "$run_dir/last.pt" ] && resume=(--resume)
  "$sqa" train-predictor --config "$config" "${resume[@]}"
fi
if run 5; then
  "$sqa" predict --checkpoint "$run_dir/best.pt" --data "$work/labels_test.jsonl" \
    --output "$run_dir/predictions_test.jsonl" --force
  "$sqa" evaluate --pred "$run_dir/predictions_test.jsonl" --ref "$work/labels_test.jsonl" \
    --output "$run_dir/evaluation_test.json" --force
fi
