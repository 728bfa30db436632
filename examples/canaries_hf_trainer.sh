#!/usr/bin/env bash
# Canaries for models trained anywhere (docs/canaries.md): dpaudit makes the canaries and flips their coins,
# the Hugging Face Trainer (non-private full fine-tune) and Opacus (DP bias + head fine-tune) train on the
# training file dpaudit wrote, and `dpaudit audit --canaries` gives each model a one-run bound (kind "bound").
#
#   examples/canaries_hf_trainer.sh [TRAIN_FILE]      # default: 300 Rotten Tomatoes rows (embedded)
#
# Environment: OUT (default runs/canaries-example), COUNT canaries (100), EPOCHS (8), MAX_LENGTH (32),
# MODEL (a Hugging Face encoder dir; default the embedded MiniLM), SKIP_OPACUS=1 to skip the Opacus part.
# About 3 minutes on one CPU core at the defaults.
set -euo pipefail

OUT=${OUT:-runs/canaries-example}
COUNT=${COUNT:-100}
EPOCHS=${EPOCHS:-8}
MAX_LENGTH=${MAX_LENGTH:-32}
MODEL_ARGS=()
if [ -n "${MODEL:-}" ]; then MODEL_ARGS=(--model "$MODEL"); fi
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

DATA=${1:-}
if [ -z "$DATA" ]; then  # the user's training file; here, 300 embedded reviews written as a plain CSV
  DATA="$OUT/reviews.csv"
  python - "$DATA" <<'EOF'
import sys
import pandas as pd
from dpaudit.data import load_embedded_default
ds = load_embedded_default(max_examples=300, seed=0)
pd.DataFrame({"text": ds.texts, "label": [ds.label_names[i] for i in ds.labels]}).to_csv(sys.argv[1], index=False)
EOF
fi

# 1. canaries: DIR/train.csv (your rows + the IN canaries), DIR/canaries.json, DIR/inclusion.json (secret)
python -m dpaudit canaries make --data "$DATA" --count "$COUNT" --out "$OUT/canaries"

# 2a. any trainer, here the Hugging Face Trainer, on DIR's training file; 3a. the audit on DIR's canaries
python "$HERE/train_hf_trainer.py" --data "$OUT/canaries/train.csv" --epochs "$EPOCHS" --batch-size 16 \
  --lr 1e-4 --max-length "$MAX_LENGTH" --out "$OUT/hf" "${MODEL_ARGS[@]}"
python -m dpaudit audit --target "$OUT/hf/model" --canaries "$OUT/canaries" --run-dir "$OUT/hf-audit" \
  --set data.max_length="$MAX_LENGTH" --set audit.canary_guess_fraction=0.2 --format md --quiet

if [ "${SKIP_OPACUS:-0}" = 1 ]; then exit 0; fi
# 2b. Opacus (DP-SGD on biases + head) on the same file; 3b. the audit, with the claim Opacus accounted
python "$HERE/train_opacus.py" --data "$OUT/canaries/train.csv" --epochs 3 --batch-size 32 --epsilon 8 \
  --max-length "$MAX_LENGTH" --out "$OUT/opacus" "${MODEL_ARGS[@]}"
read -r SIGMA Q STEPS DELTA < <(python -c "import json, sys; c = json.load(open(sys.argv[1]))['claim']; \
print(c['noise_multiplier'], c['sample_rate'], c['steps'], c['delta'])" "$OUT/opacus/members.json")
python -m dpaudit audit --target "$OUT/opacus/model" --canaries "$OUT/canaries" --run-dir "$OUT/opacus-audit" \
  --claim-noise-multiplier "$SIGMA" --claim-sample-rate "$Q" --claim-steps "$STEPS" --claim-delta "$DELTA" \
  --set data.max_length="$MAX_LENGTH" --set audit.canary_guess_fraction=0.2 --format md --quiet
