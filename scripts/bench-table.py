#!/usr/bin/env python3
"""Runs the `peers` and `hot_path` benches and prints their results as Markdown.

    scripts/bench-table.py                 # full run (about 5 minutes on 2 cores)
    scripts/bench-table.py --smoke         # quick run for CI (about 20 s once built)
    scripts/bench-table.py --no-run        # only print the results already in target/criterion
    scripts/bench-table.py --check         # also exit 1 if a target of the issue is missed

The Markdown goes to stdout; cargo's and criterion's output goes to stderr. Times are
criterion's median time per call (per thread, for the 2-thread runs); "added" is a row minus
the uninstrumented `#[inline(never)]` function of its group; "ratio" is the peer's figure
divided by ours, so a ratio above 1 means ours is cheaper. See docs/PERFORMANCE.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.path.abspath(__file__)).parent.parent

# (group, title, baseline id, ours id, rows: (id, label))
GROUPS = [
    (
        "counter",
        "Counter increment",
        "plain_fn",
        "count_usage_fn",
        [
            ("plain_fn", "baseline: `#[inline(never)]` fn, no instrumentation"),
            ("count_usage_fn", "**ours: `#[count_usage]` fn**"),
            ("counter_handle", "**ours: `Counter::increment` (handle)**"),
            ("thread_local_cell", "floor: `thread_local!` `Cell<u64>` += 1"),
            ("bare_atomic", "bare static `AtomicU64::fetch_add(1, Relaxed)`"),
            ("prometheus", "prometheus `IntCounter::inc`"),
            ("prometheus_client", "prometheus-client `Counter::inc`"),
            ("metered_hit_count", "metered `#[measure(HitCount)]`"),
            ("metrics_macro", "metrics `counter!(..).increment(1)` (Prometheus recorder)"),
            ("metrics_handle", "metrics cached `Counter` handle `.increment(1)`"),
        ],
    ),
    (
        "timed",
        "Timed function",
        "plain_fn",
        "timed_fn",
        [
            ("plain_fn", "baseline: `#[inline(never)]` fn, no instrumentation"),
            ("timed_fn", "**ours: `#[timed]` fn**"),
            ("metered_response_time", "metered `#[measure(ResponseTime)]`"),
            ("prometheus_client_std_clock", "prometheus-client `Histogram::observe` + `Instant` pair"),
        ],
    ),
    (
        "histogram",
        "Histogram record (value given, no clock)",
        "value_fn",
        "histogram_handle",
        [
            ("value_fn", "baseline: fn computing the value, no record"),
            ("histogram_handle", "**ours: `Histogram::record` (handle)**"),
            ("prometheus", "prometheus `Histogram::observe`"),
            ("prometheus_client", "prometheus-client `Histogram::observe`"),
            ("metrics_handle", "metrics `Histogram` handle `.record` (Prometheus recorder)"),
            ("hdrhistogram", "hdrhistogram `saturating_record`, 3 sig. figures (1 thread only)"),
        ],
    ),
    (
        "clock",
        "Clock pair (start + end read)",
        None,
        None,
        [
            ("std_instant_pair", "`std::time::Instant::now()` + `.elapsed()`"),
            ("rdtsc_pair", "two raw `rdtsc` reads (the floor of a TSC timer, x86_64)"),
        ],
    ),
]

# (description, group, metric, threads, target): metric is one of
#   ("added", id) -> ours' added ns <= target
#   ("ratio", peer id) -> peer added / ours added >= target
TARGETS = [
    ("`#[count_usage]` adds <= 2 ns, 1 thread", "counter", ("added", "count_usage_fn"), "1t", 2.0),
    ("`#[count_usage]` adds <= 2 ns, 2 threads", "counter", ("added", "count_usage_fn"), "2t", 2.0),
    ("`#[count_usage]` >= 3x cheaper than a bare shared atomic, 1 thread", "counter", ("ratio", "bare_atomic"), "1t", 3.0),
    ("`#[count_usage]` >= 8x cheaper than a bare shared atomic, 2 threads", "counter", ("ratio", "bare_atomic"), "2t", 8.0),
    ("`#[timed]` adds <= 25 ns, 1 thread", "timed", ("added", "timed_fn"), "1t", 25.0),
    ("`#[timed]` adds <= 25 ns, 2 threads", "timed", ("added", "timed_fn"), "2t", 25.0),
    ("`#[timed]` >= 3x cheaper than metered, 1 thread", "timed", ("ratio", "metered_response_time"), "1t", 3.0),
    ("`#[timed]` >= 3x cheaper than metered, 2 threads", "timed", ("ratio", "metered_response_time"), "2t", 3.0),
    ("`#[timed]` >= 2x cheaper than prometheus-client + std clock, 1 thread", "timed", ("ratio", "prometheus_client_std_clock"), "1t", 2.0),
    ("`#[timed]` >= 2x cheaper than prometheus-client + std clock, 2 threads", "timed", ("ratio", "prometheus_client_std_clock"), "2t", 2.0),
]

# Rendering the text exposition of 1,000 counters + 100 histograms: ours (`hot_path`, snapshot +
# text) and each peer's render of the same metrics (`peers`, group `render`), in ns per render.
RENDER_OURS = "snapshot/scrape_prometheus_text_1000_counters_100_histograms_16_threads"
RENDER_ROWS = [
    (RENDER_OURS, "**ours: a `/metrics` scrape, `Endpoints::metrics` (refreshes its kept snapshot, renders it; 16 threads touched the metrics)**"),
    ("snapshot/snapshot_and_prometheus_text_1000_counters_100_histograms_16_threads",
     "ours: a fresh `snapshot()` + `render_prometheus`"),
    ("snapshot/refresh_1000_counters_100_histograms_16_threads", "ours: `Snapshot::refresh` alone"),
    ("snapshot/snapshot_1000_counters_100_histograms_16_threads", "ours: `snapshot()` alone"),
    ("render/prometheus_client", "prometheus-client `encoding::text::encode` into a `String`"),
    ("render/prometheus", "prometheus `Registry::gather` + `TextEncoder::encode`"),
    ("render/metrics_exporter_prometheus", "metrics-exporter-prometheus `PrometheusHandle::render`"),
]
# Target: ours <= 0.2 ms, and no slower than this peer's render in the same run.
RENDER_TARGET_MS = 0.2
RENDER_RIVAL = "render/prometheus_client"

BENCHES = ["peers", "hot_path"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="quick run: 0.1 s warm-up, 0.3 s measurement, 10 samples")
    p.add_argument("--warm-up-time", type=float, default=1.0, help="seconds per benchmark (default 1)")
    p.add_argument("--measurement-time", type=float, default=4.0, help="seconds per benchmark (default 4)")
    p.add_argument("--sample-size", type=int, default=50, help="criterion samples (default 50, min 10)")
    p.add_argument("--no-run", action="store_true", help="do not run the benches; print the stored results")
    p.add_argument("--bench", action="append", choices=BENCHES, help="run only this bench (repeatable)")
    p.add_argument("--stat", default="median", choices=["median", "mean", "slope", "min"],
                   help="criterion estimate to report, or min: the fastest sample (default median)")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--charts", metavar="DIR", help="also draw the charts of docs/PERFORMANCE.md "
                   "(SVG, matplotlib; installed with pip if missing) into DIR from the same results")
    p.add_argument("filter", nargs="?", help="criterion benchmark filter (a regex), passed through")
    args = p.parse_args()
    if args.smoke:
        args.warm_up_time, args.measurement_time, args.sample_size = 0.1, 0.3, 10
    return args


def criterion_dir():
    if os.environ.get("CRITERION_HOME"):
        return Path(os.environ["CRITERION_HOME"])
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"]) / "criterion"
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return Path(json.loads(out)["target_directory"]) / "criterion"


def run_benches(args):
    crit = [
        "--warm-up-time", str(args.warm_up_time),
        "--measurement-time", str(args.measurement_time),
        "--sample-size", str(args.sample_size),
        "--noplot",
    ]
    if args.filter:
        crit.append(args.filter)
    for bench in args.bench or BENCHES:
        cmd = ["cargo", "bench", "--bench", bench, "--", *crit]
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)


def load_results(since):
    """full_id -> ns per call, for every result written at or after `since` (epoch seconds)."""
    results = {}
    base = criterion_dir()
    if not base.is_dir():
        return results, base
    for bench_json in base.glob("**/new/benchmark.json"):
        estimates = bench_json.with_name("estimates.json")
        if not estimates.is_file() or estimates.stat().st_mtime < since:
            continue
        meta = json.loads(bench_json.read_text())
        if STAT == "min":
            # The fastest sample: the least disturbed by other work on a shared machine.
            sample = json.loads(bench_json.with_name("sample.json").read_text())
            results[meta["full_id"]] = min(t / n for t, n in zip(sample["times"], sample["iters"]))
            continue
        est = json.loads(estimates.read_text())
        stat = est.get(STAT) or est.get("median")
        results[meta["full_id"]] = stat["point_estimate"]
    return results, base


def fmt_ns(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ms(ns):
    if ns is None:
        return "—"
    v = ns / 1e6
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_ratio(v):
    if v is None:
        return "—"
    return f"{v:.0f}×" if v >= 100 else f"{v:.1f}×"


def ratio(peer, ours):
    # An added cost within noise of zero (or below it) makes a ratio meaningless.
    if peer is None or ours is None or ours < 0.05:
        return None
    return peer / ours


def group_values(results, group, baseline):
    """id -> {threads: (ns, added)} for one group."""
    values = {}
    for threads in ("1t", "2t"):
        base = results.get(f"{group}_{threads}/{baseline}") if baseline else None
        prefix = f"{group}_{threads}/"
        for full_id, ns in results.items():
            if full_id.startswith(prefix):
                added = ns - base if base is not None else None
                values.setdefault(full_id[len(prefix):], {})[threads] = (ns, added)
    return values


def print_groups(results):
    known = set()
    for group, title, baseline, ours, rows in GROUPS:
        values = group_values(results, group, baseline)
        if not values:
            continue
        print(f"### {title}\n")
        if ours:
            print("| Operation | 1 thread ns/call | added | 2 threads ns/call | added "
                  "| ratio 1t: time (added) | ratio 2t: time (added) |")
            print("|---|--:|--:|--:|--:|--:|--:|")
        else:
            print("| Operation | 1 thread ns/call | 2 threads ns/call |")
            print("|---|--:|--:|")
        labels = dict(rows)
        order = [r[0] for r in rows] + sorted(set(values) - set(labels))
        for bench_id in order:
            if bench_id not in values:
                continue
            v = values[bench_id]
            for threads in ("1t", "2t"):
                known.add(f"{group}_{threads}/{bench_id}")
            label = labels.get(bench_id, f"`{bench_id}`")
            one, two = v.get("1t", (None, None)), v.get("2t", (None, None))
            if not ours:
                print(f"| {label} | {fmt_ns(one[0])} | {fmt_ns(two[0])} |")
                continue
            cells = [fmt_ns(one[0]), fmt_ns(one[1]), fmt_ns(two[0]), fmt_ns(two[1])]
            for threads, (ns, added) in (("1t", one), ("2t", two)):
                o = values.get(ours, {}).get(threads)
                if bench_id in (ours, baseline) or o is None or ns is None:
                    cells.append("")
                    continue
                rt, ra = ratio(ns, o[0]), ratio(added, o[1])
                cells.append(f"{fmt_ratio(rt)} ({fmt_ratio(ra)})")
            print(f"| {label} | " + " | ".join(cells) + " |")
        print()
    return known


def print_render(results, known):
    if not any(full_id in results for full_id, _ in RENDER_ROWS):
        return
    ours = results.get(RENDER_OURS)
    print("### Render 1,000 counters + 100 histograms as text\n")
    print("| Operation | ms per render | ratio (this row / the scrape) |")
    print("|---|--:|--:|")
    for full_id, label in RENDER_ROWS:
        known.add(full_id)
        ns = results.get(full_id)
        cell = "" if full_id == RENDER_OURS else fmt_ratio(ratio(ns, ours))
        print(f"| {label} | {fmt_ms(ns)} | {cell} |")
    print()
    print("Ours includes reading the 16 threads' shards; a peer's includes its own "
          "collection (`gather`, the exporter's histogram drain).\n")


def print_others(results, known):
    others = sorted(k for k in results if k not in known)
    if not others:
        return
    print("### Other results of this run (`hot_path`)\n")
    print("| Benchmark | ns/call |")
    print("|---|--:|")
    for full_id in others:
        print(f"| `{full_id}` | {fmt_ns(results[full_id])} |")
    print()


def print_targets(results):
    cache = {g[0]: group_values(results, g[0], g[2]) for g in GROUPS if g[2]}
    ours_of = {g[0]: g[3] for g in GROUPS}
    lines, missed = [], 0
    for desc, group, (kind, bench_id), threads, target in TARGETS:
        values = cache.get(group, {})
        ours = values.get(ours_of[group], {}).get(threads)
        if kind == "added":
            got = ours[1] if ours else None
            ok = got is not None and got <= target
            shown = f"{fmt_ns(got)} ns added" if got is not None else "not measured"
        else:
            peer = values.get(bench_id, {}).get(threads)
            if not (ours and peer):
                got, ok, shown = None, False, "not measured"
            elif ours[1] <= 0 < peer[1]:
                # Ours is within the noise of the baseline, so the ratio of added costs has no
                # finite value. The ratio of times per call is a lower bound of it (for
                # baseline b and added costs o <= p: p / o >= (b + p) / (b + o)); judge on that.
                rt = ratio(peer[0], ours[0])
                got = rt
                ok = rt is not None and rt >= target
                shown = (f">= {fmt_ratio(rt)} on added cost (ours within the baseline's noise; "
                         f"{fmt_ratio(rt)} on time per call, a lower bound)")
            else:
                ra = ratio(peer[1], ours[1])
                rt = ratio(peer[0], ours[0])
                got = ra
                ok = ra is not None and ra >= target
                shown = f"{fmt_ratio(ra)} on added cost ({fmt_ratio(rt)} on time per call)"
        missed += 0 if ok else 1
        lines.append(f"| {desc} | {shown} | {'met' if ok else '**missed**'} |")
    ok, line = render_target(results)
    missed += 0 if ok else 1
    lines.append(line)
    if all(" not measured " in l for l in lines):
        return 0
    print("### Targets of the issue\n")
    print("| Target | Measured | |")
    print("|---|---|---|")
    print("\n".join(lines))
    print()
    return missed


def render_target(results):
    """(met, table line) for "snapshot + Prometheus text <= 0.2 ms and no slower than
    prometheus-client's encoder in the same run"."""
    desc = (f"snapshot + Prometheus text (a `/metrics` scrape), 1,000 counters + 100 histograms, 16 threads, "
            f"<= {RENDER_TARGET_MS} ms and no slower than prometheus-client's encoder")
    ours, rival = results.get(RENDER_OURS), results.get(RENDER_RIVAL)
    if ours is None and rival is None:
        return False, f"| {desc} | not measured | **missed** |"
    fast = ours is not None and ours / 1e6 <= RENDER_TARGET_MS
    beats = ours is not None and rival is not None and ours <= rival
    ours_shown = f"{fmt_ms(ours)} ms" if ours is not None else "ours not measured"
    if rival is None:
        rival_shown = "prometheus-client not measured in this run"
    else:
        rt = ratio(rival, ours)
        rival_shown = f"prometheus-client {fmt_ms(rival)} ms" + (f" (peer / ours {fmt_ratio(rt)})" if rt else "")
    ok = fast and beats
    return ok, f"| {desc} | {ours_shown}; {rival_shown} | {'met' if ok else '**missed**'} |"


def machine():
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return f"{os.cpu_count()} CPUs, {cpu}, {platform.system()} {platform.release()}, {rustc}"


def pyplot():
    """matplotlib's pyplot with a file-only backend; installs matplotlib from PyPI if missing."""
    try:
        import matplotlib
    except ImportError:
        print("bench-table: installing matplotlib (pip)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"],
                       check=True, stdout=sys.stderr)
        import matplotlib
    matplotlib.use("svg")
    matplotlib.rcParams["svg.hashsalt"] = "telemetry"  # the same run draws the same file
    import matplotlib.pyplot as plt
    return plt


def draw_charts(results, out_dir):
    """Two charts from this run's results: ns per call against the peers (one thread, added
    over the uninstrumented baseline), and how a counted call and a snapshot scale."""
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    # 1. Added ns per call, ours against the peers, for counters and histograms.
    panels = []
    for group, title, baseline, _ours, rows in GROUPS:
        if group not in ("counter", "histogram"):
            continue
        values = group_values(results, group, baseline)
        bars = [(bench_id, values[bench_id]["1t"][1]) for bench_id, _ in rows
                if bench_id != baseline and bench_id in values and "1t" in values[bench_id]
                and values[bench_id]["1t"][1] is not None]
        if bars:
            panels.append((title, bars))
    if panels:
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 + 0.4 * sum(len(b) for _, b in panels)))
        axes = axes if len(panels) > 1 else [axes]
        for ax, (title, bars) in zip(axes, panels):
            names = [b for b, _ in bars][::-1]
            added = [max(v, 0.0) for _, v in bars][::-1]
            colors = ["#1f77b4" if n in ("count_usage_fn", "counter_handle", "histogram_handle")
                      else "#9e9e9e" for n in names]
            ax.barh(names, added, color=colors)
            ax.set_xscale("symlog", linthresh=1)
            ax.set_title(f"{title}: ns added per call, 1 thread (ours in blue)", fontsize=10)
            for y, v in enumerate(added):
                ax.text(v, y, f" {fmt_ns(v)}", va="center", fontsize=8)
            ax.tick_params(labelsize=8)
        fig.tight_layout()
        path = out / "perf-peers.svg"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    # 2. Scaling: a counted call with 1..16 threads, a snapshot with 10..100,000 series.
    threads = sorted((int(k.rsplit("_", 1)[1]), v) for k, v in results.items()
                     if "/count_usage_fn_threads_" in k)
    series = sorted((int(k.rsplit("_", 1)[1]), v) for k, v in results.items()
                    if "/snapshot_series_" in k)
    if threads or series:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        if threads:
            xs = [n for n, _ in threads]
            axes[0].plot(xs, [v for _, v in threads], marker="o", label="ns per call per thread")
            axes[0].plot(xs, [v * min(n, 2) / n for n, v in threads], marker="s",
                         label="ns per call per core (2 cores)")
            axes[0].set_xscale("log", base=2)
            axes[0].set_xlabel("threads on one counter")
            axes[0].set_title("#[count_usage] as threads grow", fontsize=10)
            axes[0].legend(fontsize=8)
        if series:
            axes[1].plot([n for n, _ in series], [v / 1e6 for _, v in series], marker="o")
            axes[1].set_xscale("log")
            axes[1].set_yscale("log")
            axes[1].set_xlabel("labeled series (plus 1,100 metrics)")
            axes[1].set_ylabel("ms per snapshot")
            axes[1].set_title("snapshot as series grow", fontsize=10)
        for ax in axes:
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=8)
        fig.tight_layout()
        path = out / "perf-scaling.svg"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    for path in written:
        print(f"bench-table: wrote {path}", file=sys.stderr)


def main():
    global STAT
    args = parse_args()
    STAT = args.stat
    started = time.time() - 1
    if not args.no_run:
        run_benches(args)
    results, base = load_results(0 if args.no_run else started)
    if not results:
        sys.exit(f"no criterion results in {base}")
    if args.no_run:
        run = "stored results in target/criterion"
    else:
        run = (f"{'smoke' if args.smoke else 'full'}, criterion warm-up {args.warm_up_time} s, "
               f"measurement {args.measurement_time} s, {args.sample_size} samples")
    print(f"Machine: {machine()}  ")
    print(f"Run: {run}; {STAT} ns per call (per thread for 2 threads).\n")
    known = print_groups(results)
    print_render(results, known)
    print_others(results, known)
    missed = print_targets(results)
    if args.charts:
        draw_charts(results, args.charts)
    if args.check and missed:
        sys.exit(f"{missed} target(s) missed")


STAT = "median"

if __name__ == "__main__":
    main()
