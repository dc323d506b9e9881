#!/usr/bin/env python3
"""Turns a bench/run results directory (one JSON line per measurement) into
markdown tables: one per scenario, absolute figures and ratios against
Herald in the same run. With several rounds (`bench/run --rounds N`), each
ratio is taken against Herald in the same round, and a second table gives
each peer's median over the rounds."""
import json
import pathlib
import statistics
import sys

PEER_NAMES = {
    "herald": "Herald",
    "herald-disk": "Herald, disk store (fsync)",
    "floor": "floor (one epoll thread, one write per subscriber)",
    "nchan": "nginx + nchan, 1 worker",
    "nchan2": "nginx + nchan, 2 workers",
    "axum": "naive axum",
    "express": "express (tutorial)",
}


def get(report, path):
    value = report
    for key in path.split("."):
        if value is None:
            return None
        value = value.get(key)
    return value


def fmt(value, kind):
    if value is None:
        return "–"
    if kind == "int":
        return f"{value:,.0f}"
    if kind == "rate":
        return f"{value / 1e3:,.1f}k" if value >= 1e4 else f"{value:,.0f}"
    if kind == "ms":
        return f"{value:.2f}"
    if kind == "kib":
        return f"{value:.2f}"
    if kind == "s":
        return f"{value:.2f}"
    if kind == "pct":
        return f"{value:.0f}%"
    return str(value)


# Per scenario: columns (title, path, kind) and the ratio column: (path,
# title, higher_is_better).
SCENARIOS = {
    "S1": (
        "S1 — idle subscribers: hub memory per subscriber",
        [("established", "established", "int"), ("failed", "failed", "int"),
         ("connects/s", "connect_rate", "rate"),
         ("hub RSS after (KiB)", "hub_rss_after_kib", "int"),
         ("KiB / subscriber", "hub_kib_per_subscriber", "kib")],
        ("hub_kib_per_subscriber", "KiB/sub vs Herald", False),
    ),
    "S2": (
        "S2 — fan-out at a fixed rate: publish→receive latency",
        [("established", "established", "int"), ("published/s", "publish_rate", "rate"),
         ("deliveries/s", "deliveries_per_sec", "rate"),
         ("p50 ms", "latency_ms.p50", "ms"), ("p99 ms", "latency_ms.p99", "ms"),
         ("p99.9 ms", "latency_ms.p999", "ms"), ("max ms", "latency_ms.max", "ms"),
         ("gaps", "gaps", "int"), ("missing", "missing", "int"),
         ("bench CPU", "loadgen_cpu_percent", "pct")],
        ("latency_ms.p99", "p99 vs Herald", False),
    ),
    "S3": (
        "S3 — 100 subscribers, publishing as fast as the hub answers",
        [("published/s", "publish_rate", "rate"), ("deliveries/s", "deliveries_per_sec", "rate"),
         ("p50 ms", "latency_ms.p50", "ms"), ("p99 ms", "latency_ms.p99", "ms"),
         ("max ms", "latency_ms.max", "ms"), ("gaps", "gaps", "int"),
         ("closed", "closed", "int"), ("bench CPU", "loadgen_cpu_percent", "pct")],
        ("deliveries_per_sec", "deliveries/s vs Herald", True),
    ),
    "S4": (
        "S4 — one topic per subscriber, publishes spread over them",
        [("established", "established", "int"), ("published/s", "publish_rate", "rate"),
         ("deliveries/s", "deliveries_per_sec", "rate"),
         ("p50 ms", "latency_ms.p50", "ms"), ("p99 ms", "latency_ms.p99", "ms"),
         ("max ms", "latency_ms.max", "ms"), ("gaps", "gaps", "int"),
         ("missing", "missing", "int"), ("bench CPU", "loadgen_cpu_percent", "pct")],
        ("latency_ms.p99", "p99 vs Herald", False),
    ),
    "S5": (
        "S5 — reconnect storm with Last-Event-ID",
        [("established", "established", "int"), ("reconnected", "storm.reconnected", "int"),
         ("reconnect failed", "storm.failed", "int"),
         ("accepts/s", "storm.accepts_per_sec", "rate"),
         ("all reconnected s", "storm.reconnect_secs", "s"),
         ("caught up", "storm.caught_up", "int"), ("caught up s", "storm.caught_up_secs", "s"),
         ("gaps", "gaps", "int"), ("missing", "missing", "int")],
        ("storm.accepts_per_sec", "accepts/s vs Herald", True),
    ),
}


def medians(rows, columns, ratio, ratios):
    """Per run and peer, in first-seen order: the median of each column
    over the rounds, and the median of the per-round ratios."""
    out = []
    header = ["run", "peer", "rounds"] + [c[0] for c in columns] + [ratio[1] + ", median"]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    groups = {}
    for row in rows:
        if "report" in row:
            groups.setdefault((row["label"], row["peer"]), []).append(row["report"])
    for (label, peer), reports in groups.items():
        cells = []
        for column in columns:
            values = [v for v in (get(r, column[1]) for r in reports) if v is not None]
            cells.append(fmt(statistics.median(values), column[2]) if values else "–")
        mine = ratios.get((label, peer), [])
        cells.append(
            f"{statistics.median(mine):.2f}× ({min(mine):.2f}–{max(mine):.2f})" if mine else "–"
        )
        name = PEER_NAMES.get(peer, peer)
        out.append(f"| {label} | {name} | {len(reports)} | " + " | ".join(cells) + " |")
    return out


def main(directory):
    out = []
    for scenario, (title, columns, ratio) in SCENARIOS.items():
        path = pathlib.Path(directory) / f"{scenario}.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rounds = max((row.get("round", 1) for row in rows), default=1) > 1
        out.append(f"### {title}\n")
        header = ["run", "peer"] + (["round"] if rounds else []) + [c[0] for c in columns]
        header.append(ratio[1])
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        herald = {
            (r["label"], r.get("round", 1)): r["report"]
            for r in rows
            if r["peer"] == "herald" and "report" in r
        }
        ratios = {}
        commands = []
        for row in rows:
            name = PEER_NAMES.get(row["peer"], row["peer"])
            first = f"| {row['label']} | {name} | " + (f"{row.get('round', 1)} | " if rounds else "")
            if "report" not in row:
                out.append(f"{first}failed: {row.get('error', '?')} |")
                continue
            report = row["report"]
            cells = [fmt(get(report, c[1]), c[2]) for c in columns]
            base = get(herald.get((row["label"], row.get("round", 1))), ratio[0])
            mine = get(report, ratio[0])
            if base and mine is not None:
                cells.append(f"{mine / base:.2f}×")
                ratios.setdefault((row["label"], row["peer"]), []).append(mine / base)
            else:
                cells.append("–")
            out.append(first + " | ".join(cells) + " |")
            if row.get("command") and row.get("round", 1) == 1:
                commands.append(f"{row['label']} {row['peer']}: `{row['command']}`")
        if rounds:
            out.append("")
            out.append("Median over the rounds (ratios: the median of each round's ratio, min–max):")
            out.append("")
            out.extend(medians(rows, columns, ratio, ratios))
        probe = pathlib.Path(directory) / "fsync-probe.txt"
        if scenario == "S3" and probe.exists():
            out.append("")
            out.append(probe.read_text().strip())
        out.append("")
        if commands:
            out.append("<details><summary>command lines</summary>\n")
            out.extend(f"- {c}" for c in commands)
            out.append("\n</details>\n")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
