#!/usr/bin/env python3
"""Pairs ggml's `test-backend-ops perf` MUL_MAT rows with `vlm_kernels_bench` BM_Linear rows of the
same shapes (one text file holding both outputs) and prints, as JSON rows for perf_chart.py --ref
and as a Markdown table, vlm's speed-up on each shape:

  scripts/perf_chart_kernels.py KERNELS.txt [--json OUT.json]

Pairs: ggml f16 with vlm bf16 and native, q8_0 with q8, q4_0 with q4. Standard library only.
"""
import json
import re
import sys

GGML = re.compile(r"MUL_MAT\(type=f32,ne=\[(\d+),(\d+),1,1\].*sources=(\w+)\[(\d+),(\d+),1,1\].*?([\d.]+) us/run")
VLM = re.compile(r"BM_Linear/fmt:(\d)/M:(\d+)/K:(\d+)/N:(\d+)/real_time\s+([\d.]+) (ms|us)")
FMT = {0: "native", 1: "bf16", 2: "q8", 3: "q4"}
PAIR = {"f16": ["bf16", "native"], "q8_0": ["q8"], "q4_0": ["q4"]}


def main(argv):
    text = open(argv[1]).read()
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    ggml = {}
    for n, m, t, k, _, us in GGML.findall(text):
        ggml[(t, int(m), int(k), int(n))] = float(us)
    vlm = {}
    for f, m, k, n, v, unit in VLM.findall(text):
        vlm[(FMT[int(f)], int(m), int(k), int(n))] = float(v) * (1000.0 if unit == "ms" else 1.0)
    rows, table = [], ["| shape (M×K×N) | ggml type | ggml µs | vlm format | vlm µs | vlm speed-up |",
                       "|---|---|---|---|---|---|"]
    for (t, m, k, n), g_us in sorted(ggml.items(), key=lambda x: (x[0][1], x[0][0], x[0][2])):
        for f in PAIR.get(t, []):
            v_us = vlm.get((f, m, k, n))
            if v_us is None:
                continue
            sp = g_us / v_us
            table.append(f"| {m}×{k}×{n} | {t} | {g_us:.0f} | {f} | {v_us:.0f} | {sp:.2f}x |")
            rows.append({"label": f"{f} vs ggml {t}, M={m} K={k} N={n}", "metric": "speedup", "value": round(sp, 3)})
    print("\n".join(table))
    if "--json" in argv:
        with open(argv[argv.index("--json") + 1], "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
