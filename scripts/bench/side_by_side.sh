#!/bin/bash
# vlm and llama.cpp on the same random Qwen2-VL-2B and the same 640x488 image, 2 threads,
# interleaved per weight format in one run (the machine is shared: only ratios measured together
# mean anything). llama.cpp is not built here: point LLAMA_BIN at a build's bin/ folder.
#
#   LLAMA_BIN=/path/llama.cpp/build/bin GGUF=/path/gguf MODEL=/path/qwen2-vl-2b \
#     scripts/bench/side_by_side.sh OUT_DIR
#
# GGUF holds qwen2vl-2b-{F16,Q8_0,Q4_0}.gguf and mmproj-qwen2vl-2b-F16.gguf
# (scripts/bench/hf2gguf_qwen2vl.py, then llama-quantize). REP repeats each run (default 3).
# Then: scripts/llama_cpp_log.py turns the llama.cpp logs into rows for scripts/perf_chart.py.
set -eu
OUT=${1:?output folder}
REP=${REP:-3}
VLM=${VLM:-$(dirname "$0")/../../build/vlm}
IMG=$OUT/img640x488.png
mkdir -p "$OUT"
ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=640x488 -frames:v 1 "$IMG"
{ date -u; uptime; } > "$OUT/when.txt"
# Each llama.cpp format against vlm's: F16 text against bf16; Q8_0 / Q4_0 text (with the F16
# mmproj, as llama.cpp runs it) against q8 / q4 with the vision tower in bf16.
for pair in "F16 bf16 bf16" "Q8_0 q8 bf16" "Q4_0 q4 bf16"; do
  set -- $pair
  for r in $(seq 1 "$REP"); do
    nice -n -10 "$LLAMA_BIN/llama-mtmd-cli" -m "$GGUF/qwen2vl-2b-$1.gguf" --mmproj "$GGUF/mmproj-qwen2vl-2b-F16.gguf" \
      --image "$IMG" -p "Describe this image." -n 32 -t 2 -fa on --ignore-eos --temp 0 --perf -lv 5 \
      > "$OUT/llama_$1_$r.log" 2>&1
  done
  nice -n -10 "$VLM" bench --model "$MODEL" --image "$IMG" --gen-tokens 32 --repeat "$REP" --threads 2 --probe \
    --weights "$2" --vision-weights "$3" --json > "$OUT/vlm_$2_vit_$3.json"
  uptime >> "$OUT/when.txt"
done
# vlm only: exact f32 math, and q8 / q4 with the vision tower quantised too.
for w in native q8 q4; do
  nice -n -10 "$VLM" bench --model "$MODEL" --image "$IMG" --gen-tokens 32 --repeat "$REP" --threads 2 --probe \
    --weights $w --json > "$OUT/vlm_$w.json"
done
{ date -u; uptime; } >> "$OUT/when.txt"
