#!/usr/bin/env python3
"""Reads llama.cpp `llama-mtmd-cli` logs (run with `--perf -lv 5`) into reference rows for
scripts/perf_chart.py, one row per metric, each the median over the logs given:

  scripts/llama_cpp_log.py LABEL RUN.log [RUN.log ...] > rows.json

  vit_encode_ms  "mtmd batch encoding done in N ms"   (the vision encoder on the image)
  prefill_tok_s  "image decoded (batch 1/1) in N ms" with n_tokens_batch image tokens
  decode_tok_s   llama_perf_context_print "eval time = ... ( ... tokens per second)"

Prints a JSON list of {"label", "metric", "value", "runs"}. Standard library only.
"""
import json
import re
import statistics
import sys


def parse(text):
    out = {}
    m = re.search(r"mtmd batch encoding done in (\d+) ms", text)
    if m:
        out["vit_encode_ms"] = float(m.group(1))
    n = re.search(r"n_tokens_batch = (\d+)", text)
    m = re.search(r"image decoded \(batch 1/1\) in (\d+) ms", text)
    if n and m:
        out["prefill_tok_s"] = int(n.group(1)) / (float(m.group(1)) / 1000.0)
    m = re.search(r"\beval time =\s*[\d.]+ ms /\s*\d+ runs.*?([\d.]+) tokens per second", text)
    if m:
        out["decode_tok_s"] = float(m.group(1))
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    label, runs = argv[1], [parse(open(p, errors="replace").read()) for p in argv[2:]]
    rows = []
    for metric in ("vit_encode_ms", "prefill_tok_s", "decode_tok_s"):
        vals = [r[metric] for r in runs if metric in r]
        if vals:
            rows.append({"label": label, "metric": metric, "value": statistics.median(vals), "runs": vals})
    if not rows:
        print("no llama.cpp timings found in the logs", file=sys.stderr)
        return 1
    json.dump(rows, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
