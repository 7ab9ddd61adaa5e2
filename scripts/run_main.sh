#!/usr/bin/env bash
# Main job: one-shot landmark detection on the mouse skull micro-CT set, end to end.
# Installs the project (scripts/install.sh), trains on the documented reference (C57BL6_J_) with its
# validation subject (BALB_CBYJ_), detects the other 18 subjects with the one-shot method and with the
# naive registration baseline, and scores both. Everything goes to ./outputs/oneshot/.
# Data: ../shared/data relative to the repository, or $LANDMARK_DATA_ROOT.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
# shellcheck disable=SC1091
source .venv/bin/activate

DATA="${LANDMARK_DATA_ROOT:-../shared/data}/mouse_skull_microct"
REFERENCE=C57BL6_J_
VALIDATION=BALB_CBYJ_
OUT=outputs/oneshot
mkdir -p "$OUT/targets" "$OUT/truth"

oneshot-landmarks train \
  --reference "$DATA/images/$REFERENCE.nii.gz" \
  --reference-landmarks "$DATA/landmarks/$REFERENCE.mrk.json" \
  --reference-soi "$DATA/bone_masks/$REFERENCE.nii.gz" \
  --validation "$DATA/images/$VALIDATION.nii.gz" \
  --validation-soi "$DATA/bone_masks/$VALIDATION.nii.gz" \
  --width 32 --seed 0 -o "$OUT/model.pt"

# the 18 targets (links to the data, never copies) and their truth
for image in "$DATA"/images/*.nii.gz; do
  name=$(basename "$image" .nii.gz)
  [ "$name" = "$REFERENCE" ] || [ "$name" = "$VALIDATION" ] && continue
  ln -sf "$(realpath "$image")" "$OUT/targets/$name.nii.gz"
  ln -sf "$(realpath "$DATA/landmarks/$name.mrk.json")" "$OUT/truth/$name.mrk.json"
done

for method in oneshot registration; do
  oneshot-landmarks detect -m "$OUT/model.pt" --method "$method" -o "$OUT/detect_$method" "$OUT/targets" || true
  oneshot-landmarks evaluate --predictions "$OUT/detect_$method" --truth "$OUT/truth" \
    --radii 0.5 1.0 --failure-threshold 1.0 --title "mouse skull, $method" --output "$OUT/evaluation_$method"
done
