"""Turns the raw wrk outputs of scripts/bench into target/bench/summary.json and the table in
docs/benchmarks.md (between the `<!-- bench:begin -->` and `<!-- bench:end -->` markers)."""
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys

DIR, ROUNDS, SECONDS, CONNECTIONS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
UNITS = {"us": 1, "ms": 1000, "s": 1_000_000}


def micros(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = micros(re.search(r"\s50%\s+(\S+)", text).group(1))
    p99 = micros(re.search(r"\s99%\s+(\S+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    return rps, p50, p99, int(errors.group(1)) if errors else 0, cpu_per_request(path, requests)


def cpu_per_request(path, requests):
    """The server's CPU time (every thread) per request over the measured run, in µs; None
    when the run recorded none."""
    cpu = path[: -len(".txt")] + ".cpu"
    if not os.path.exists(cpu) or requests == 0:
        return None
    ticks, per_second = (int(x) for x in open(cpu).read().split())
    return ticks / per_second * 1_000_000 / requests


variants = {}
for path in sorted(glob.glob(os.path.join(DIR, "raw", "*.*.txt"))):
    name = os.path.basename(path).split(".")[0]
    variants.setdefault(name, []).append(parse(path))

def median_or_none(values):
    return round(statistics.median(values), 2) if values else None


summary = {"rounds": ROUNDS, "seconds_per_run": SECONDS, "connections": CONNECTIONS, "variants": {}}
for name, runs in variants.items():
    summary["variants"][name] = {
        "requests_per_s": round(statistics.median(r[0] for r in runs)),
        "p50_us": round(statistics.median(r[1] for r in runs), 1),
        "p99_us": round(statistics.median(r[2] for r in runs), 1),
        "non_2xx": sum(r[3] for r in runs),
        "server_cpu_us_per_request": median_or_none([r[4] for r in runs if r[4] is not None]),
    }
v = summary["variants"]


def ratio(a, b):
    return round(v[a]["requests_per_s"] / v[b]["requests_per_s"], 3)


summary["ratios"] = {
    "audited/bare": ratio("audited", "bare"),
    "audited_detect/audited": ratio("audited_detect", "audited"),
    "audited_cold/bare": ratio("audited_cold", "bare"),
    "audited/trace_json": ratio("audited", "trace_json"),
    "trace_json/bare": ratio("trace_json", "bare"),
    "token_endpoint audited/bare": ratio("token_audited", "token_bare"),
}
def added_cpu(a, b):
    x, y = v[a]["server_cpu_us_per_request"], v[b]["server_cpu_us_per_request"]
    return None if x is None or y is None else round(x - y, 2)


summary["added_server_cpu_us_per_request"] = {
    "audited": added_cpu("audited", "bare"),
    "audited_cold": added_cpu("audited_cold", "bare"),
    "token_endpoint": added_cpu("token_audited", "token_bare"),
}
summary["added_p99_us"] = {
    "audited": round(v["audited"]["p99_us"] - v["bare"]["p99_us"], 1),
    "audited_cold": round(v["audited_cold"]["p99_us"] - v["bare"]["p99_us"], 1),
    "token_endpoint": round(v["token_audited"]["p99_us"] - v["token_bare"]["p99_us"], 1),
}
micro = open(os.path.join(DIR, "raw", "micro.txt")).read() if os.path.exists(os.path.join(DIR, "raw", "micro.txt")) else ""
summary["micro"] = {}
for m in re.finditer(r"^([\w/]+)\s*\n?\s*time:\s+\[\S+ \S+ (\S+ \S+) \S+ \S+\]", micro, re.M):
    summary["micro"][m.group(1)] = m.group(2)
for line in micro.splitlines():
    if line.startswith(("allocations per request", "memory with a stalled writer", "emit CPU per event", "enqueue_contending/")) or "events/s" in line:
        summary["micro"][line.split(":")[0]] = line.split(":", 1)[1].strip()

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
summary["machine"] = {"cores": os.cpu_count(), "cpu": cpu, "rustc": rustc}
summary["date"] = datetime.date.today().isoformat()
json.dump(summary, open(os.path.join(DIR, "summary.json"), "w"), indent=2)

rows = ["| variant | requests/s | p50 µs | p99 µs | server CPU µs per request |", "| --- | ---: | ---: | ---: | ---: |"]
for name in ["bare", "audited", "audited_detect", "audited_cold", "trace_json", "token_bare", "token_audited"]:
    if name in v:
        cpu_us = v[name]["server_cpu_us_per_request"]
        rows.append(f"| `{name}` | {v[name]['requests_per_s']} | {v[name]['p50_us']} | {v[name]['p99_us']} | {'' if cpu_us is None else cpu_us} |")
rows += ["", "| ratio (throughput) | value |", "| --- | ---: |"]
rows += [f"| `{k}` | {val} |" for k, val in summary["ratios"].items()]
rows += ["", "| server CPU added per request, under `wrk` | µs |", "| --- | ---: |"]
rows += [f"| `{k}` | {'' if val is None else val} |" for k, val in summary["added_server_cpu_us_per_request"].items()]
rows += ["", "| added p99 latency | µs |", "| --- | ---: |"]
rows += [f"| `{k}` | {val} |" for k, val in summary["added_p99_us"].items()]
if summary["micro"]:
    rows += ["", "| micro-benchmark | median |", "| --- | --- |"]
    rows += [f"| {k} | {val} |" for k, val in summary["micro"].items()]
table = "\n".join(rows)
header = (f"Run on {summary['date']}: `scripts/bench {ROUNDS} {SECONDS}` on {summary['machine']['cores']} cores "
          f"({cpu}), {rustc}; wrk with 1 thread and {CONNECTIONS} connections, server and wrk pinned to "
          f"separate cores, {ROUNDS} interleaved rounds of {SECONDS} s per variant (medians).\n\n")
doc_path = "docs/benchmarks.md"
doc = open(doc_path).read()
head, rest = doc.split("<!-- bench:begin -->")
_, tail = rest.split("<!-- bench:end -->")
open(doc_path, "w").write(head + "<!-- bench:begin -->\n" + header + table + "\n<!-- bench:end -->" + tail)
print(table)
