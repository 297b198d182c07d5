#!/usr/bin/env bash
# The detector end to end on CPU, on the real reference data in ../shared/data (see README "Set-up").
# Override the locations with NANOGFL_DATA=... OUT=...
set -euo pipefail
DATA=${NANOGFL_DATA:-../shared/data}
OUT=${OUT:-runs/e2e}
VAL_ANN=$DATA/coco_val2017_subset206/instances_val2017_subset.json
VAL_IMAGES=$DATA/coco_val2017_subset206/images
OFFICIAL=$DATA/nanodet_plus_m_416_ncnn/nanodet-plus-m_416.param
if [ ! -f "$OFFICIAL" ]; then
  echo "reference data not found in $DATA (set NANOGFL_DATA)"; exit 2
fi
mkdir -p "$OUT"
step() { printf '\n=== %s\n' "$*"; }

step "1. model size (BN folded, aux dropped)"
nanogfl info configs/nanodet-plus-m_416.yml

step "2. check the data, then train from scratch for 2 epochs on the 209-image COCO train subset (CPU)"
nanogfl data-check configs/coco-subset_nanodet-plus-m_320.yml --out "$OUT/data-check"
nanogfl train configs/coco-subset_nanodet-plus-m_320.yml --out "$OUT/train" --overwrite \
  --set train.epochs=2 train.val_interval=2 train.batch_size=16

step "3. import the official NanoDet-Plus-m 416 weights (ncnn fp16) into a checkpoint"
nanogfl import --model "$OFFICIAL" --arch nanodet-plus-m --size 416 --out "$OUT/nanodet-plus-m_416.pt" \
  --bn-images "$DATA/coco_train2017_subset209/images"

step "4. COCO evaluation of the imported checkpoint at 416 (reference: AP 0.335, AP50 0.492)"
nanogfl val --model "$OUT/nanodet-plus-m_416.pt" --ann "$VAL_ANN" --images "$VAL_IMAGES" --size 416 \
  --json "$OUT/val_torch_416.json"

step "5. export to ONNX and ncnn (fp16), verified against PyTorch"
nanogfl export --model "$OUT/nanodet-plus-m_416.pt" --format onnx ncnn --size 416 --out "$OUT/export" \
  --verify-images "$VAL_IMAGES"
MODEL="$OUT/export/nanodet-plus-m_416x416.param"

step "6. COCO evaluation of the exported ncnn model through the torch-free runtime"
nanogfl val --model "$MODEL" --ann "$VAL_ANN" --images "$VAL_IMAGES" --threads 2 --json "$OUT/val_ncnn_416.json"

step "7. predictions on a real video and on images"
nanogfl predict --model "$MODEL" --source "$DATA/video/carphone_pristine.mp4" --out "$OUT/predict" --threads 2
nanogfl predict --model "$MODEL" --source "$VAL_IMAGES/000000397133.jpg" --out "$OUT/predict" --json

step "8. latency: our export next to the official ncnn file, same run (the runtime infers the official file's metadata)"
nanogfl benchmark --model "$MODEL" "$OFFICIAL" --threads 1 2 --size 416 --json "$OUT/benchmark.json"

step "9. legacy NanoDet-m: import its three published files and evaluate them (reference AP 0.233 / 0.249 / 0.227)"
for spec in nanodet_m_ncnn/nanodet_m.param:320 nanodet_m_ncnn/nanodet-m-416.param:416 \
            nanodet_m_onnx/nanodet-m_320.onnx:320; do
  file=${spec%%:*}; size=${spec##*:}; name=$(basename "${file%.*}")
  nanogfl import --model "$DATA/$file" --arch nanodet-m --size "$size" --out "$OUT/legacy_$name.pt"
  nanogfl val --model "$OUT/legacy_$name.pt" --ann "$VAL_ANN" --images "$VAL_IMAGES" --json "$OUT/val_legacy_$name.json"
done

step "done: results in $OUT"
