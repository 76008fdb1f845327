#!/usr/bin/env bash
# Shipped default models: corpus, labels, training, evaluation, release (see README.md here).
#   stage 1: speech pools (speaker-disjoint train/valid/test), permissive + procedural noise, RIRs
#   stage 2: synthetic speech from Debian TTS voices (`sqa synthesize`)
#   stage 3: pre-train the restorer (`sqa finetune`, L_spec; resumable)
#   stage 4: homologous systems for every split (`sqa simulate-systems`)
#   stage 5: teacher labels (`sqa score --resume`) and unanimous preference pairs (`sqa pairs`)
#   stage 6: train the rankers (`sqa train-ranker`) and the predictor (`sqa train-predictor`)
#   stage 7: SQA-guided fine-tuning of the restorer with the predictor as critic (`sqa finetune`)
#   stage 8: evaluation on the simulated test split and the human-rated development set
#   stage 9: release into checkpoints/ (`sqa checkpoint export`)
# Usage: recipes/default_models/run.sh [first_stage] [last_stage]   (from the repository root)
# Debian packages for stages 1-2: espeak-ng flite festival festvox-ru festvox-* (see README.md).
set -euo pipefail
first=${1:-1}
last=${2:-9}
data=${DATA:-../shared/data}
work=${WORK:-exp/default_models}
sqa=${SQA:-.venv/bin/sqa}
jobs=${JOBS:-2}
here=recipes/default_models
russian=${RUSSIAN_WAVS:-/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav}
run() { [ "$first" -le "$1" ] && [ "$last" -ge "$1" ]; }
link() { mkdir -p "$2" && ln -sf "$(realpath "$1")" "$2/"; }

if run 1; then
  pools=$work/pools
  rm -rf "$pools" && mkdir -p "$pools"
  # Speech, speaker-disjoint. Train: festvox-ru (1 male speaker), LJSpeech (1 female), FSDD
  # george/jackson/lucas/nicolas (every 5th take, so digits do not dominate), LibriSpeech and
  # LibriVox excerpts, alsa prompts. Valid: FSDD theo, ARCTIC aew, speechbrain spk1. Test: FSDD
  # yweweler, ARCTIC axb and the other ARCTIC files, VCTK p286, speechbrain spk2, German sample.
  for file in "$russian"/*.wav "$data"/speech/ljspeech/*.wav; do link "$file" "$pools/speech_train"; done
  for file in "$data"/speech/fsdd/*.wav; do
    name=$(basename "$file" .wav); take=${name##*_}
    case "$name" in
      # every 10th take in valid/test, so the longer sentences there are not drowned in digits
      *_theo_*) [ $((take % 10)) -eq 0 ] && link "$file" "$pools/speech_valid" ;;
      *_yweweler_*) [ $((take % 10)) -eq 0 ] && link "$file" "$pools/speech_test" ;;
      *) [ $((take % 5)) -eq 0 ] && link "$file" "$pools/speech_train" ;;
    esac
  done
  for file in "$data"/speech/misc/*; do
    case "$(basename "$file")" in
      cmu_arctic_us_aew_*|spk1_*) link "$file" "$pools/speech_valid" ;;
      cmu_arctic_us_axb_*|*arctic_a00*|p286_*|spk2_*|german_*) link "$file" "$pools/speech_test" ;;
      *) link "$file" "$pools/speech_train" ;;
    esac
  done
  # Noise: only permissive recordings (audiomentations MIT, pyroomacoustics/Speech Commands
  # CC BY 4.0 for train; speechbrain Apache-2.0 held out for valid/test) plus procedural noise
  # (babble from the split's own speakers). hu100 ("research use") and emgse_test (no licence)
  # are never used for shipped models.
  for folder in audiomentations pyroomacoustics; do
    for file in "$data/noise/$folder"/*; do link "$file" "$pools/noise_train"; done
  done
  for file in "$data"/noise/speechbrain/*; do
    link "$file" "$pools/noise_valid"; link "$file" "$pools/noise_test"
  done
  "$sqa" make-noise --output "$pools/noise_train/procedural" --count 120 --seed 0 \
    --babble-speech "$pools/speech_train" --rir-output "$pools/rir_train/simulated" --rir-count 40
  for split in valid test; do
    seed=$([ "$split" = valid ] && echo 100000 || echo 200000)
    "$sqa" make-noise --output "$pools/noise_$split/procedural" --count 30 --seed "$seed" \
      --babble-speech "$pools/speech_$split" --rir-output "$pools/rir_$split/simulated" --rir-count 10
  done
  # Measured RIRs: speechbrain (Apache-2.0) and audiomentations (MIT) for training only.
  for file in "$data"/rir/*/*; do link "$file" "$pools/rir_train"; done
fi
if run 2; then
  # Synthetic speech (marked "synthetic": true in utterances.jsonl); used for training only.
  "$sqa" synthesize --output "$work/tts" --count "${TTS_COUNT:-600}" --jobs "$jobs"
  # Shipped models train only on espeak-ng, flite and the festival voices whose licences allow
  # any use (kal, ked, cmu_us_slt_arctic_hts, msu_ru_nsh); the GPL/LGPL festival voices are left out.
  rm -rf "$work/pools/speech_tts" && mkdir -p "$work/pools/speech_tts"
  permissive='"voice": "(kal_diphone|ked_diphone|cmu_us_slt_arctic_hts|msu_ru_nsh_clunits)"'
  { grep -v '"engine": "festival"' "$work/tts/utterances.jsonl"
    grep -E "$permissive" "$work/tts/utterances.jsonl"; } |
    sed -n 's/^{"file": "\([^"]*\)".*/\1/p' |
    while read -r file; do link "$work/tts/$file" "$work/pools/speech_tts"; done
fi
if run 3; then
  # Restorer snapshots after 150 and 500 steps are kept as two more "systems" for the corpus.
  for steps in 150 500 "${RESTORER_STEPS:-800}"; do
    "$sqa" finetune --config "$here/restorer.yaml" --steps "$steps" --threads 1 --resume
    [ "$steps" -lt 1000 ] && cp "$work/restorer/last.pt" "$work/restorer/snapshot_$steps.pt"
  done
fi
# split -> "speech pool, first seed, utterances"; train_tts uses the synthetic voices of stage 2.
declare -A splits=(
  [train_real]="speech_train 0 ${TRAIN_COUNT:-160}"
  [train_tts]="speech_tts 500000 ${TTS_SPLIT_COUNT:-40}"
  [valid]="speech_valid 100000 ${VALID_COUNT:-16}"
  [test]="speech_test 200000 ${TEST_COUNT:-30}"
)
pool_of() { case "$1" in train_*) echo train ;; *) echo "$1" ;; esac; }
if run 4; then
  for split in train_real train_tts valid test; do
    read -r speech seed count <<< "${splits[$split]}"
    folder=$work/pools/$speech
    pool=$(pool_of "$split")
    tag=synthetic=$([ "$speech" = speech_tts ] && echo true || echo false)
    systems=$here/systems.yaml; [ "$split" = test ] && systems=$here/systems_test.yaml
    "$sqa" simulate-systems --speech "$folder" --noise "$work/pools/noise_$pool" \
      --rir "$work/pools/rir_$pool" --systems "$systems" --output "$work/sim_$split" \
      --count "$count" --seed "$seed" --duration 4 --jobs "$jobs" --tag "$tag" --prefix "${split}_"
  done
fi
# Teachers: every offline teacher except MCD (0.9 s/file, a TTS metric) and NISQA (non-commercial).
metrics=${METRICS:-pesq,estoi,sdr,si_snr,lsd,dnsmos_sig,dnsmos_bak,dnsmos_ovrl,dnsmos_p808,plcmos,distill_mos}
# Unanimous pairs over perceptual (DNSMOS OVRL, Distill-MOS), fidelity (PESQ) and
# intelligibility (ESTOI) teachers, with small margins so near-ties are not labelled.
pair_metrics=${PAIR_METRICS:-dnsmos_ovrl,distill_mos,pesq,estoi}
pair_margins=${PAIR_MARGINS:-dnsmos_ovrl=0.05,distill_mos=0.05,pesq=0.05,estoi=0.01}
if run 5; then
  for split in test valid train_real train_tts; do
    "$sqa" score --systems "$work/sim_$split/systems" --ref-dir "$work/sim_$split/clean" \
      --metrics "$metrics" --dnsmos-mode fast --jobs "$jobs" --resume \
      --output "$work/labels_$split.jsonl"
    "$sqa" pairs --scores "$work/labels_$split.jsonl" --metrics "$pair_metrics" \
      --margins "$pair_margins" --output "$work/pairs_$split.jsonl" --force
  done
fi
# Ranker variants: "<preset>:<training data>"; real = train_real only, all = + synthetic voices.
# PREDICTORS= (empty) or RANKERS= (empty) skips them, e.g. to train both groups side by side.
ranker_variants=${RANKERS-distillmos:real distillmos:all cached:real}
if run 6; then
  if [ -n "$ranker_variants" ]; then
    cat "$work/labels_train_real.jsonl" "$work/labels_train_tts.jsonl" > "$work/labels_train_all.jsonl"
    cat "$work/pairs_train_real.jsonl" "$work/pairs_train_tts.jsonl" > "$work/pairs_train_all.jsonl"
  fi
  for variant in $ranker_variants; do
    preset=${variant%%:*}; data=${variant##*:}
    options=(--epochs 40 --learning-rate 1e-3 --batch-size 64 --lr-decay 0.95)
    [ "$preset" = cached ] && options=(--epochs 12 --learning-rate 1e-3 --batch-size 16 --lr-decay 0.9 --cache-audio)
    "$sqa" train-ranker --train "$work/labels_train_$data.jsonl" --preferences "$work/pairs_train_$data.jsonl" \
      --model "$preset" --output-dir "$work/ranker_${preset}_$data" --alpha 1 --beta 0 \
      --validation-utterances 8 --keep-best 3 --feature-store "$work/distillmos_features.pt" \
      --resume "${options[@]}"
  done
  for config in ${PREDICTORS-predictor predictor_all}; do
    run_dir=$(sed -n 's/^output_dir: *//p' "$here/$config.yaml")
    resume=(); [ -f "$run_dir/last.pt" ] && resume=(--resume)
    "$sqa" train-predictor --config "$here/$config.yaml" "${resume[@]}"
  done
fi
# The restorer fine-tuned with the predictor as critic (guard on), and both restorers evaluated.
if run 7; then
  "$sqa" finetune --config "$here/restorer_sqa.yaml" --threads 1 --resume
fi
# Candidates evaluated side by side with the peers (DNSMOS OVRL/P.808, Distill-MOS, ECS over each).
# Each entry is a run folder under $work (its best.pt) or a shipped release name (checkpoints/),
# e.g. EVAL_RANKERS="ranker-default ranker-accurate" EVAL_PREDICTORS=predictor-default.
rankers=${EVAL_RANKERS-ranker_distillmos_real ranker_distillmos_all ranker_cached_real}
predictors=${EVAL_PREDICTORS-predictor predictor_all}  # EVAL_PREDICTORS= (empty): none
human=$data/human/m1_codec_mushra
evaluation=${EVALUATION:-$work/evaluation}
ratings() { tail -n +2 "$human/ratings.csv" | tr -d '\r'; }  # the file has CRLF line ends
part() { [[ " ${EVAL_PARTS:-a b c} " == *" $1 "* ]]; }  # EVAL_PARTS="c" runs only part (c)
model_file() { if [ -f "$work/$1/best.pt" ]; then echo "$work/$1/best.pt"; else echo "$1"; fi; }
if run 8; then
  mkdir -p "$evaluation"
  if part a; then
    # (a) simulated test split: 18 systems, two ladders of known order (ladders/*.csv), used as
    # "ratings" per file so that `sqa agreement` scores within-utterance ladder pairs too
    "$sqa" score --systems "$work/sim_test/systems" --ref-dir "$work/sim_test/clean" \
      --metrics "$metrics" --dnsmos-mode fast --jobs "$jobs" --resume --output "$work/labels_test.jsonl"
    sed -n 's/^{"system_id": "\([^"]*\)", "sample_id": "\([^"]*\)".*/\1,\2/p' \
      "$work/sim_test/systems.jsonl" > "$evaluation/test_files.csv"
    for ladder in snr mp3; do
      awk -F, 'NR == FNR { if (FNR > 1) order[$1] = $2; next }
        FNR == 1 { print "sample_id,system_id,utterance_id,mos" }
        ($1 in order) { print $2 "," $1 "," $2 "," order[$1] }' \
        "$here/ladders/$ladder.csv" "$evaluation/test_files.csv" > "$evaluation/test_ladder_$ladder.csv"
    done
    test_scores=()
    for peer in dnsmos_ovrl dnsmos_p808 distill_mos; do
      "$sqa" rank --root "$work/sim_test/systems" --scores "$work/labels_test.jsonl" \
        --score-column "$peer" --force --output "$evaluation/test_ecs_$peer.csv" \
        --per-file "$evaluation/test_ecs_${peer}_files.csv"
      test_scores+=(--scores "$work/labels_test.jsonl:$peer:$peer" \
        --scores "$evaluation/test_ecs_${peer}_files.csv:score:ECS over $peer")
    done
    for ranker in $rankers; do
      "$sqa" rank --root "$work/sim_test/systems" --ranker "$(model_file "$ranker")" --force \
        --output "$evaluation/test_$ranker.csv" --per-file "$evaluation/test_${ranker}_files.csv"
      test_scores+=(--scores "$evaluation/test_${ranker}_files.csv:score:$ranker")
    done
    for predictor in $predictors; do
      "$sqa" predict --checkpoint "$(model_file "$predictor")" --data "$work/labels_test.jsonl" \
        --output "$evaluation/test_$predictor.jsonl" --force
      "$sqa" evaluate --pred "$evaluation/test_$predictor.jsonl" --ref "$work/labels_test.jsonl" \
        --output "$evaluation/test_$predictor.json" --force
      # its overall head as a per-file score and as ECS input, like the teachers above
      "$sqa" rank --root "$work/sim_test/systems" --scores "$evaluation/test_$predictor.jsonl" \
        --score-column distill_mos --force --output "$evaluation/test_ecs_$predictor.csv" \
        --per-file "$evaluation/test_ecs_${predictor}_files.csv"
      test_scores+=(--scores "$evaluation/test_$predictor.jsonl:distill_mos:$predictor distill_mos" \
        --scores "$evaluation/test_ecs_${predictor}_files.csv:score:ECS over $predictor")
    done
    for ladder in snr mp3; do
      "$sqa" agreement --human "$evaluation/test_ladder_$ladder.csv" --human-column mos \
        "${test_scores[@]}" --output "$evaluation/test_ladder_$ladder.json" --force
    done
  fi
  if part b; then
    # (b) human-rated development set (codec MUSHRA): folders <system>/<utterance>.wav for ranking
    ratings | while IFS=, read -r _ system utterance path _; do
      link "$human/$path" "$work/dev/systems/$system"
      mv -f "$work/dev/systems/$system/$(basename "$path")" "$work/dev/systems/$system/$utterance.wav"
    done
    { echo "sample_id,system_id,utterance_id,path"
      ratings | while IFS=, read -r sample system utterance path _; do
        echo "$sample,$system,$utterance,$(realpath "$human/$path")"; done; } > "$work/dev/dev.csv"
    # non-intrusive teachers only (the listening test rated the codecs without a reference score)
    "$sqa" score --data "$work/dev/dev.csv" --metrics dnsmos_sig,dnsmos_bak,dnsmos_ovrl,dnsmos_p808,plcmos,distill_mos --dnsmos-mode full --resume \
      --output "$work/dev/teachers.jsonl"
    scores=()
    for peer in dnsmos_ovrl dnsmos_p808 distill_mos; do
      "$sqa" rank --root "$work/dev/systems" --scores "$work/dev/teachers.jsonl" --score-column "$peer" \
        --output "$evaluation/dev_ecs_$peer.csv" --per-file "$evaluation/dev_ecs_${peer}_files.csv" --force
      scores+=(--scores "$work/dev/teachers.jsonl:$peer:$peer" \
        --scores "$evaluation/dev_ecs_${peer}_files.csv:score:ECS over $peer")
    done
    for ranker in $rankers; do
      "$sqa" rank --root "$work/dev/systems" --ranker "$(model_file "$ranker")" --force \
        --output "$evaluation/dev_$ranker.csv" --per-file "$evaluation/dev_${ranker}_files.csv"
      scores+=(--scores "$evaluation/dev_${ranker}_files.csv:score:$ranker")
    done
    for predictor in $predictors; do
      "$sqa" predict --checkpoint "$(model_file "$predictor")" --dir "$work/dev/systems" \
        --output "$evaluation/dev_$predictor.jsonl" --force
      for head in dnsmos_ovrl distill_mos pesq; do
        scores+=(--scores "$evaluation/dev_$predictor.jsonl:$head:$predictor $head")
      done
      "$sqa" rank --root "$work/dev/systems" --scores "$evaluation/dev_$predictor.jsonl" \
        --score-column distill_mos --force --output "$evaluation/dev_ecs_$predictor.csv" \
        --per-file "$evaluation/dev_ecs_${predictor}_files.csv"
      scores+=(--scores "$evaluation/dev_ecs_${predictor}_files.csv:score:ECS over $predictor")
    done
    "$sqa" agreement --human "$human/ratings.csv" "${scores[@]}" --output "$evaluation/dev.json" --force
  fi
  if part c; then
    # (c) restorers before/after: held-out simulated speech, and real speakers (the development
    # set's 16 clean references) degraded with the test noises and rooms
    mkdir -p "$work/dev/references"
    ratings | while IFS=, read -r _ _ utterance _ _ _ reference; do
      ln -sf "$(realpath "$human/$reference")" "$work/dev/references/$utterance.wav"; done
    for set in "restore_test speech_test 300000 20" "restore_real ../dev/references 400000 16"; do
      read -r name speech seed count <<< "$set"
      "$sqa" simulate-systems --speech "$work/pools/$speech" --noise "$work/pools/noise_test" \
        --rir "$work/pools/rir_test" --systems "$here/systems_restorer.yaml" \
        --output "$work/$name" --count "$count" --seed "$seed" --duration 4 --jobs "$jobs"
      "$sqa" score --systems "$work/$name/systems" --ref-dir "$work/$name/clean" \
        --metrics "$metrics" --dnsmos-mode fast --jobs "$jobs" --resume \
        --output "$evaluation/$name.jsonl"
    done
  fi
fi
# Release: the variants chosen on the development set (README.md, "Choices"), fp16 storage.
if run 9; then
  release() {
    "$sqa" checkpoint export "$1" "checkpoints/$2.pt" --name "$2" --description "$3" --half --force
  }
  release "$work/${RANKER_DEFAULT:-ranker_cached_real}/best.pt" ranker-default \
    "URGENT-PK late-fusion ranker (log-mel ResNet, cached embeddings), trained on teacher-unanimous pairs"
  release "$work/${RANKER_ACCURATE:-ranker_distillmos_real}/best.pt" ranker-accurate \
    "URGENT-PK ranker on the frozen Distill-MOS network, trained on teacher-unanimous pairs"
  release "$work/${PREDICTOR:-predictor}/best.pt" predictor-default \
    "Uni-VERSA-Ext-style predictor of 11 offline teachers on frozen Distill-MOS features"
  release "$work/restorer/last.pt" restorer-default "compact BSRNN (16 kHz) pre-trained with L_spec"
  release "$work/restorer_sqa/last.pt" restorer-default-sqa \
    "restorer-default after SQA-guided fine-tuning with predictor-default as critic"
  "$sqa" checkpoint verify
fi
