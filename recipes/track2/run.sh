#!/usr/bin/env bash
# URGENT 2026 Track 2 on the official data layout (see README.md here):
#   stage 0: smoke data only (`run.sh smoke`): synthetic data.jsonl files + a tiny random WavLM
#   stage 1: train the baseline predictor on data/*/train/data.jsonl (`sqa train-predictor`)
#   stage 2: predict the evaluation list (`sqa predict`)
#   stage 3: the submission zip, validated (`sqa track2 submit`, `sqa track2 validate`)
#   stage 4: the official statistics against a labelled list (`sqa evaluate`)
# Usage (from the repository root):
#   TRACK2=../urgent2026_challenge_track2 SSL_PATH=/models/wavlm-base-plus README_YAML=my.yaml \
#     recipes/track2/run.sh [first_stage] [last_stage]
#   recipes/track2/run.sh smoke          # stages 0-4 on synthetic data, here, in ~1 minute
#   WORK=/tmp/t2 recipes/track2/run.sh smoke  # outputs under WORK (default exp/track2_smoke)
set -euo pipefail
here=recipes/track2
sqa=${SQA:-.venv/bin/sqa}
python=${PYTHON:-.venv/bin/python}
if [ "${1:-}" = smoke ]; then
  smoke=1; first=0; last=4
  work=${WORK:-exp/track2_smoke}
  data=$work/data                                   # the official layout, built by stage 0
  ssl=$work/wavlm_tiny
  readme=$here/smoke_readme.yaml
  eval_data=$data/smoke/test/data.jsonl             # ids and audio only, as the blind test
  eval_ref=$data/smoke/test/data_labelled.jsonl
  # a CPU-sized trunk and run; every other setting is config.yaml's
  overrides=(--set model.trunk.num_layers=1 --set model.trunk.d_model=32
    --set model.trunk.num_heads=2 --set model.trunk.ffn_dim=64 --set epochs=3
    --set warmup_steps=2 --set batch_seconds=24 --set max_batch_size=8 --set valid_every=4
    --set num_workers=0 --set num_threads=1)
else
  smoke=0; first=${1:-1}; last=${2:-4}
  work=${WORK:-exp/track2}
  data=${TRACK2:-../urgent2026_challenge_track2}/data  # written by its scripts/data/*/prepare.sh
  ssl=${SSL_PATH:?set SSL_PATH to a local microsoft/wavlm-base-plus folder}
  readme=${README_YAML:-$work/README.yaml}           # `sqa track2 template`, filled in
  eval_data=${EVAL_DATA:-$data/chime-7-udase-eval/test/data.jsonl}
  eval_ref=${EVAL_REF-$eval_data}                     # EVAL_REF= (empty): no labels, no stage 4
  overrides=(--set "device=${DEVICE:-cpu}")
fi
run() { [ "$first" -le "$1" ] && [ "$last" -ge "$1" ]; }

if run 0 && [ "$smoke" = 1 ]; then
  # Clean speech (espeak-ng voices), procedural noise, and 4 systems of known order per split.
  "$sqa" synthesize --output "$work/tts" --count 12 --engines espeak-ng --seed 0
  "$sqa" make-noise --output "$work/noise" --count 3 --kinds coloured --duration 4 --seed 0
  declare -A seeds=([train]=0 [valid]=1000 [test]=2000)
  declare -A counts=([train]=12 [valid]=4 [test]=4)
  for split in train valid test; do
    "$sqa" simulate-systems --speech "$work/tts/wav" --noise "$work/noise" \
      --systems "$here/smoke_systems.yaml" --output "$work/sim_$split" --count "${counts[$split]}" \
      --seed "${seeds[$split]}" --duration 3 --prefix "${split}_"
    "$sqa" score --systems "$work/sim_$split/systems" --ref-dir "$work/sim_$split/clean" \
      --metrics pesq,estoi,sdr --no-progress --force --output "$work/labels_$split.jsonl"
    # Official data.jsonl lines: sample ids unique per file (<system>_<utterance>, as the official
    # preparation writes them) and the listener MOS of smoke_mos.csv beside the teacher labels.
    mkdir -p "$data/smoke/$split"
    awk -F, 'NR == FNR { if (FNR > 1) mos[$1] = $2; next }
      { match($0, /"system_id": "[^"]*"/); team = substr($0, RSTART + 14, RLENGTH - 15)
        sub(/"sample_id": "/, "\"sample_id\": \"" team "_")
        sub(/"metrics": \{/, "\"metrics\": {\"mos\": " mos[team] ", "); print }' \
      "$here/smoke_mos.csv" "$work/labels_$split.jsonl" > "$data/smoke/$split/data.jsonl"
  done
  mv "$data/smoke/test/data.jsonl" "$eval_ref"
  sed 's/, "metrics": {[^}]*}//' "$eval_ref" > "$eval_data"
  # A tiny random WavLM saved like a downloaded one (no subcommand writes SSL models).
  "$python" -c 'import sys, torch, transformers as t; torch.manual_seed(0); t.WavLMModel(
    t.WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=64, conv_dim=(32, 32, 32), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=16,
    max_bucket_distance=40)).save_pretrained(sys.argv[1])' "$ssl"
fi
if run 1; then
  if [ "$smoke" = 1 ]; then
    train=$data/smoke/train/data.jsonl; valid=$data/smoke/valid/data.jsonl
  else  # every training corpus, CHiME-7 UDASE eval for validation (the official README's split)
    train="$data/*/train/data.jsonl"; valid=$data/chime-7-udase-eval/test/data.jsonl
  fi
  resume=(); [ -f "$work/predictor/last.pt" ] && resume=(--resume)
  "$sqa" train-predictor --config "$here/config.yaml" --train "$train" --valid "$valid" \
    --output-dir "$work/predictor" --set "model.ssl.path=$ssl" "${overrides[@]}" "${resume[@]}"
fi
# The official baseline submits its last checkpoint (model_last.pt); CHECKPOINT=best.pt picks ours.
checkpoint=$work/predictor/${CHECKPOINT:-last.pt}
if run 2; then
  "$sqa" predict --checkpoint "$checkpoint" --data "$eval_data" --output "$work/predictions.jsonl" \
    --force --no-progress
fi
if run 3; then
  "$sqa" track2 submit --predictions "$work/predictions.jsonl" --data "$eval_data" \
    --readme "$readme" --output "$work/submission.zip" --force
  "$sqa" track2 validate "$work/submission.zip" --data "$eval_data"
fi
if run 4 && [ -n "$eval_ref" ]; then
  "$sqa" evaluate --pred "$work/submission.zip" --ref "$eval_ref" --metric mos \
    --output "$work/evaluation_mos.json" --force
  "$sqa" evaluate --pred "$work/predictions.jsonl" --ref "$eval_ref" \
    --output "$work/evaluation_all.json" --force
fi
