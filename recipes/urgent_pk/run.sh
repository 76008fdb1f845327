#!/usr/bin/env bash
# URGENT-PK on the official layout (<root>/<team>/wav.scp, <team>/mos.scp, split.json; see
# README.md here):
#   stage 0: smoke data only (`run.sh smoke`): synthetic teams of known quality order
#   stage 1: train the ranker on the training root's tr / cv split (`sqa train-ranker`)
#   stage 2: rank every test root, Binary and Non-Binary Scoring, against its MOS (`sqa rank`)
#   stage 3: the paper's baseline: ECS over DNSMOS OVRL (`sqa score`, `sqa rank --scores`)
# Usage (from the repository root):
#   TRAIN_ROOT=PKDataset24 TEST_ROOTS="PKDataset25_en PKDataset25_zh chime7" \
#     recipes/urgent_pk/run.sh [first_stage] [last_stage]
#   recipes/urgent_pk/run.sh smoke       # stages 0-3 on synthetic teams, here, in ~1 minute
#   WORK=/tmp/pk recipes/urgent_pk/run.sh smoke   # outputs under WORK (default exp/urgent_pk_smoke)
set -euo pipefail
here=recipes/urgent_pk
sqa=${SQA:-.venv/bin/sqa}
if [ "${1:-}" = smoke ]; then
  smoke=1; first=0; last=3
  work=${WORK:-exp/urgent_pk_smoke}
  train_root=$work/pk_train
  test_roots=$work/pk_test
  # config.yaml's settings for a few steps, with the CPU-sized `compact` preset of the same
  # early-fusion mel model (SMOKE_MODEL=paper: the paper's ResNet34, 6-8 min here)
  overrides=(--set "model=${SMOKE_MODEL:-compact}" --set epochs=2 --set max_steps_per_epoch=3
    --set keep_best=2)
else
  smoke=0; first=${1:-1}; last=${2:-3}
  work=${WORK:-exp/urgent_pk}
  train_root=${TRAIN_ROOT:?set TRAIN_ROOT to the training URGENT-PK root (urgent24_en in the paper)}
  test_roots=${TEST_ROOTS:?set TEST_ROOTS to the test roots (urgent25_*, CHiME-7 UDASE in the paper)}
  overrides=(--set "device=${DEVICE:-cpu}")
fi
run() { [ "$first" -le "$1" ] && [ "$last" -ge "$1" ]; }
quoted_ids() { sed -n 's/^\([^ ]*\) .*/"\1"/p' | paste -sd, -; }  # wav.scp ids as a JSON list

if run 0 && [ "$smoke" = 1 ]; then
  "$sqa" synthesize --output "$work/tts" --count 12 --engines espeak-ng --seed 0
  "$sqa" make-noise --output "$work/noise" --count 3 --kinds coloured --duration 4 --seed 0
  for set in "train 10 0" "test 6 2000"; do
    read -r name count seed <<< "$set"
    "$sqa" simulate-systems --speech "$work/tts/wav" --noise "$work/noise" \
      --systems "$here/smoke_systems.yaml" --output "$work/sim_$name" --count "$count" \
      --seed "$seed" --duration 3 --prefix "${name}_"
    # The URGENT-PK layout: one folder per team, its MOS from smoke_mos.csv.
    root=$work/pk_$name
    tail -n +2 "$here/smoke_mos.csv" | while IFS=, read -r team mos; do
      mkdir -p "$root/$team"
      for file in "$work/sim_$name/systems/$team"/*.wav; do
        echo "$(basename "$file" .wav) $(realpath "$file")"
      done > "$root/$team/wav.scp"
      sed "s/ .*/ $mos/" "$root/$team/wav.scp" > "$root/$team/mos.scp"
    done
    scp=$root/snr30/wav.scp
    if [ "$name" = train ]; then  # 8 utterances for training, 2 for validation
      echo "{\"tr\": [$(head -n 8 "$scp" | quoted_ids)], \"cv\": [$(tail -n +9 "$scp" | quoted_ids)], \"tt\": []}"
    else
      echo "{\"tr\": [], \"cv\": [], \"tt\": [$(quoted_ids < "$scp")]}"
    fi > "$root/split.json"
  done
fi
if run 1; then
  resume=(); [ -f "$work/ranker/last.pt" ] && resume=(--resume)
  "$sqa" train-ranker --config "$here/config.yaml" --train "$train_root" \
    --output-dir "$work/ranker" "${overrides[@]}" "${resume[@]}"
fi
if run 2; then
  for root in $test_roots; do
    name=$(basename "$root")
    for scoring in bs nbs; do
      "$sqa" rank --data "$root" --ranker "$work/ranker/best.pt" --scoring "$scoring" --mos "$root" \
        --output "$work/rank_${name}_$scoring.csv" --force --no-progress
    done
  done
fi
if run 3; then
  for root in $test_roots; do
    name=$(basename "$root")
    "$sqa" score --data "$root" --metrics dnsmos_ovrl --jobs "${JOBS:-1}" --resume --no-progress \
      --output "$work/dnsmos_$name.jsonl"
    "$sqa" rank --data "$root" --scores "$work/dnsmos_$name.jsonl" --score-column dnsmos_ovrl \
      --mos "$root" --output "$work/rank_${name}_dnsmos.csv" --force --no-progress
  done
fi
