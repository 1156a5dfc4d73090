"""Draws the perf_analyzer benchmark's rows (the CSV it writes) as one SVG:
for each model, throughput and p50/p99 latency against concurrency, one line
per path (front door, worker direct, in-process ONNX Runtime).

usage: plot_perf.py ROWS.csv OUT.svg [TITLE]
(matplotlib is installed by `make bench-perf`)
"""

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
from matplotlib.ticker import NullLocator  # noqa: E402

# Text stays text rather than glyph outlines: a far smaller file, and a diff
# that can be read.
plt.rcParams["svg.fonttype"] = "none"
# Fixed element ids, so that a re-run changes only what was measured.
plt.rcParams["svg.hashsalt"] = "hotswap-bench-perf"

# The bench's path names, in the order and colours the chart uses.
PATHS = {
    "front door": "tab:blue",
    "worker direct": "tab:orange",
    "in-process ort": "tab:green",
}


def read(path):
    """{model: {path: [(concurrency, infer/s, p50 µs, p99 µs)]}} of the CSV,
    models in the order they first appear."""
    rows = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows[r["model"]][r["path"]].append(
                (
                    int(r["concurrency"]),
                    float(r["infer_per_s"]),
                    float(r["p50_us"]),
                    float(r["p99_us"]),
                )
            )
    return rows


def main():
    source, out = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else "perf_analyzer"
    rows = read(source)
    if not rows:
        sys.exit(f"no rows in {source}")
    levels = sorted({p[0] for paths in rows.values() for ps in paths.values() for p in ps})

    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 3.6 * len(rows)), squeeze=False)
    for (model, paths), (through, latency) in zip(rows.items(), axes):
        for path, colour in PATHS.items():
            points = sorted(paths.get(path, []))
            if not points:
                continue
            c = [p[0] for p in points]
            through.plot(c, [p[1] for p in points], "o-", color=colour, label=path)
            latency.plot(c, [p[2] for p in points], "o-", color=colour, label=path)
            latency.plot(c, [p[3] for p in points], "s--", color=colour)
        through.set_title(f"{model}: throughput")
        through.set_ylabel("inferences / s")
        # In-process calls of a tiny model run ten times as many per second
        # as served ones: on a linear scale the served lines would lie flat.
        rates = [p[1] for ps in paths.values() for p in ps]
        if max(rates) > 10 * min(rates):
            through.set_yscale("log")
        else:
            through.set_ylim(bottom=0)
        latency.set_title(f"{model}: latency (p50 solid, p99 dashed)")
        latency.set_ylabel("µs")
        # p99 at high concurrency can be ten times p50: a log scale keeps
        # both readable.
        latency.set_yscale("log")
        for ax in (through, latency):
            ax.set_xscale("log", base=2)
            ax.set_xticks(levels, [str(c) for c in levels])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("concurrency")
            ax.grid(True, which="major", alpha=0.3)
        through.legend(fontsize="small")
        latency.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    # No date in the metadata: the file changes only when the figures do.
    fig.savefig(out, format="svg", metadata={"Date": None})


if __name__ == "__main__":
    main()
