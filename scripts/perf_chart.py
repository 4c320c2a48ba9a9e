#!/usr/bin/env python3
"""Turns `vlm bench --json` outputs (and optional reference rows) into an SVG bar chart.

  scripts/perf_chart.py OUT.svg RUN.json [RUN.json ...] [--ref REF.json ...] [--title TEXT]

Each RUN.json holds one `vlm bench --json` object (one weight format). Each REF.json (--ref may repeat) is a
list of {"label": ..., "metric": ..., "value": ...} rows measured in the same session (for example
llama.cpp kernel timings) drawn as grey bars next to vlm's. Panels: decode tok/s (with the limit
the probed read bandwidth allows, as a tick), prefill tok/s, ViT encode seconds, and rows with
metric "speedup" (vlm kernel vs a reference kernel on the same shape). Standard library
only, so it runs wherever the project builds.
"""
import json
import sys
from xml.sax.saxutils import escape

PANELS = [
    ("decode_tok_s", "decode (tok/s, higher is better)", 1.0),
    ("prefill_tok_s", "prefill (tok/s, higher is better)", 1.0),
    ("vit_encode_ms", "ViT encode (s, lower is better)", 1e-3),
    ("speedup", "kernel speed-up over ggml, same shapes and run (x, higher is better)", 1.0),
]
COLORS = {"native": "#1f77b4", "bf16": "#2ca02c", "q8": "#ff7f0e", "q4": "#d62728"}


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, args = argv[1], argv[2:]
    # Bars are drawn in the order of the arguments, so a reference can sit next to its vlm run.
    title, items = "vlm bench", []
    i = 0
    while i < len(args):
        if args[i] == "--ref":
            items.append(("ref", json.load(open(args[i + 1]))))
            i += 2
        elif args[i] == "--title":
            title = args[i + 1]
            i += 2
        else:
            items.append(("run", json.load(open(args[i]))))
            i += 1
    bar_h, gap, label_w, plot_w, pad = 18, 6, 190, 420, 14
    rows = []  # (panel index, label, value, color, limit)
    for p, (key, _, scale) in enumerate(PANELS):
        for kind, item in items:
            if kind == "ref":
                for x in item:
                    if x.get("metric") == key:
                        rows.append((p, x["label"], x["value"] * scale, "#999999", None))
                continue
            v = item.get(key)
            if v is None:
                continue
            limit = item.get("decode_limit_tok_s") if key == "decode_tok_s" else None
            w, vw = item.get("weights", "?"), item.get("vision_weights")
            label = "vlm " + w + ("" if vw in (None, w) else ", ViT " + vw)
            rows.append((p, label, v * scale, COLORS.get(w, "#555"), limit))
    label_w = max(label_w, 20 + int(6.6 * max((len(r[1]) for r in rows), default=0)))
    y = 40
    parts = []
    for p, (key, heading, _) in enumerate(PANELS):
        prow = [r for r in rows if r[0] == p]
        if not prow:
            continue
        vmax = max(max(r[2] for r in prow), max((r[4] or 0) for r in prow)) or 1.0
        parts.append(f'<text x="{pad}" y="{y}" font-weight="bold">{escape(heading)}</text>')
        y += 10
        for _, label, v, color, limit in prow:
            w = plot_w * v / vmax
            parts.append(f'<text x="{pad}" y="{y + bar_h - 5}">{escape(label)}</text>')
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
            tx = label_w + w + 4
            if limit:
                lx = label_w + plot_w * limit / vmax
                tx = max(tx, lx + 4)  # the value right of the limit tick, not under it
                parts.append(f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{y - 2}" y2="{y + bar_h + 2}" '
                             f'stroke="black" stroke-width="2"/>')
                parts.append(f'<text x="{lx + 3:.1f}" y="{y - 3}" font-size="10">limit {limit:.3g}</text>')
            parts.append(f'<text x="{tx:.1f}" y="{y + bar_h - 5}">{v:.3g}</text>')
            y += bar_h + gap
        y += 24
    width = label_w + plot_w + 90
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{pad}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>'] + parts + ["</svg>"]
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
