#!/usr/bin/env python3
"""Tables of bench/fanout samples.

    python3 summarize.py [--targets] [--samples] results/run-A.jsonl [results/run-B.jsonl ...]

Reads the JSON lines run.sh writes (one per sample: peer, n, rep, ok, ...,
and the client's RESULT under "result") and prints

1. per peer and N: the median across reps of each rep's broadcast p50, p99
   and max (with min..max across reps), sustained msgs/s, idle RSS;
2. RATIO to the floor of the same rep (same file, same N, same rep), median
   (min..max): p50, p99, server CPU per round, msgs/s. Drift of the machine
   between reps cancels out of these; they are what the targets use;
3. diagnostics: first client and trigger answered (p50), server CPU per round,
   server CPU per delivered message in the sustained phase, client CPU use,
   KiB per idle client, spread across reps, and anything lost;
4. with --targets, PASS/FAIL of the emulator's targets;
5. with --samples, one line per sample.

Samples that are not ok (client failed, server died) count in "reps ok" and
in the loss check but in no figure.
"""
import json
import statistics
import sys

ORDER = ["floor", "node-ws", "mosquitto", "emulator-json", "emulator-mqtt", "emulator-raw"]
EMULATORS = ["emulator-json", "emulator-mqtt", "emulator-raw"]


# ---------------------------------------------------------------- reading

def read(paths):
    samples = []
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    s = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"{path}:{number}: not JSON ({e}), skipped", file=sys.stderr)
                    continue
                s["src"] = path
                s.setdefault("result", {})
                samples.append(s)
    return samples


def sort_key(key):
    peer, n = key
    return (n, ORDER.index(peer) if peer in ORDER else len(ORDER), peer)


# per-sample figures, None when missing
def per(r, num, den, scale):
    """r[num] / r[den] * scale; None when num is missing or den is missing or 0."""
    if r.get(num) is None or not r.get(den):
        return None
    return r[num] / r[den] * scale


def per_round_cpu_ms(r):
    return per(r, "rounds_server_cpu_s", "rounds", 1e3)


def us_per_msg(r):
    return per(r, "sus_server_cpu_s", "sus_delivered", 1e6)


def client_cpu_pct(r):
    return per(r, "sus_client_cpu_s", "sus_elapsed_s", 100)


def server_cpu_pct(r):
    return per(r, "sus_server_cpu_s", "sus_elapsed_s", 100)


def kib_per_client(r):
    if r.get("rss_idle_kib") is None or r.get("rss_before_kib") is None or not r.get("n"):
        return None
    return (r["rss_idle_kib"] - r["rss_before_kib"]) / r["n"]


def idle_mib(r):
    return None if r.get("rss_idle_kib") is None else r["rss_idle_kib"] / 1024


METRICS = {
    "p50": lambda r: r.get("p50_ms"),
    "p99": lambda r: r.get("p99_ms"),
    "max": lambda r: r.get("max_ms"),
    "msgs/s": lambda r: r.get("sus_msgs_per_s") or None,
    "cpu/round": per_round_cpu_ms,
}


# ---------------------------------------------------------------- formatting

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ms(v):
    return "-" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.1f}")


def kilo(v):
    return "-" if v is None else f"{v / 1000:.0f}k"


def two(v):
    return "-" if v is None else f"{v:.2f}"


def one(v):
    return "-" if v is None else f"{v:.1f}"


def whole(v):
    return "-" if v is None else f"{v:.0f}"


def med_span(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}..{fmt(max(values))})"


def spread_pct(values):
    values = [v for v in values if v is not None]
    if len(values) < 2 or not statistics.median(values):
        return "-"
    return f"{(max(values) - min(values)) / statistics.median(values) * 100:.0f}%"


def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()


# ---------------------------------------------------------------- pairing

class Runs:
    def __init__(self, samples):
        self.samples = samples
        self.groups = {}
        self.by_rep = {}
        for s in samples:
            self.groups.setdefault((s["peer"], s["n"]), []).append(s)
            if s.get("ok"):
                self.by_rep[(s["peer"], s["src"], s["n"], s["rep"])] = s["result"]

    def ok(self, peer, n):
        return [s["result"] for s in self.groups.get((peer, n), []) if s.get("ok")]

    def ratios(self, peer, base, n, metric):
        """Per rep: peer's figure / base's figure of the same file, N and rep."""
        f = METRICS[metric]
        out = []
        for s in self.groups.get((peer, n), []):
            if not s.get("ok"):
                continue
            b = self.by_rep.get((base, s["src"], n, s["rep"]))
            if b is None:
                continue
            x, y = f(s["result"]), f(b)
            if x is not None and y:
                out.append(x / y)
        return out


# ---------------------------------------------------------------- tables

def main_table(runs):
    print("Broadcast latency (trigger -> last client) and sustained rate; median across reps (min..max).")
    print()
    rows = []
    for key in sorted(runs.groups, key=sort_key):
        peer, n = key
        ok = runs.ok(peer, n)
        rows.append([
            peer, n, f"{len(ok)}/{len(runs.groups[key])}",
            med_span([r.get("p50_ms") for r in ok], ms),
            med_span([r.get("p99_ms") for r in ok], ms),
            med_span([r.get("max_ms") for r in ok], ms),
            med_span([r.get("sus_msgs_per_s") for r in ok], kilo),
            med_span([idle_mib(r) for r in ok], one),
        ])
    table(["peer", "N", "reps ok", "p50 ms", "p99 ms", "max ms", "sustained msgs/s", "idle RSS MiB"], rows)


def ratio_table(runs):
    rows = []
    for key in sorted(runs.groups, key=sort_key):
        peer, n = key
        if peer == "floor":
            continue
        pairs = len(runs.ratios(peer, "floor", n, "p50"))
        if not pairs:
            continue
        rows.append([peer, n, pairs] + [med_span(runs.ratios(peer, "floor", n, m), two)
                                         for m in ("p50", "p99", "cpu/round", "msgs/s")])
    if not rows:
        print("RATIO table: no floor samples to pair with.")
        print()
        return
    print("RATIO to the floor of the same rep, median across reps (min..max). Below 1 is better than the")
    print("floor for p50, p99 and server CPU per round; above 1 is better for msgs/s.")
    print()
    table(["peer", "N", "pairs", "p50 / floor", "p99 / floor", "server CPU per round / floor", "msgs/s / floor"], rows)


def diagnostics(runs):
    print("Diagnostics, medians across reps: first = trigger -> first client, answer = trigger -> answered")
    print("(HTTP status read, or PUBLISH written), both p50; server CPU per measured round; sustained phase:")
    print("server CPU per delivered message, server and client CPU use (% of one core; a client near 100 %")
    print("means the figure is the client's limit); KiB per idle client = (idle RSS - RSS before clients) / N;")
    print("spread = (max - min) / median across reps; lost = missed + duplicated + reordered deliveries,")
    print("failed rounds, clients dropped, stray frames, and warning lines in the server's log, summed over")
    print("all samples (not-ok samples included).")
    print()
    rows = []
    for key in sorted(runs.groups, key=sort_key):
        peer, n = key
        ok = runs.ok(peer, n)
        every = [s["result"] for s in runs.groups[key]]
        total = lambda f: sum(int(r.get(f) or 0) for r in every)
        errors = sorted({str(s["result"].get("error") or s.get("error")) for s in runs.groups[key] if not s.get("ok")})
        rows.append([
            peer, n,
            ms(median([r.get("first_p50_ms") for r in ok])),
            ms(median([r.get("answer_p50_ms") for r in ok])),
            ms(median([per_round_cpu_ms(r) for r in ok])),
            two(median([us_per_msg(r) for r in ok])),
            whole(median([server_cpu_pct(r) for r in ok])),
            whole(median([client_cpu_pct(r) for r in ok])),
            one(median([kib_per_client(r) for r in ok])),
            spread_pct([r.get("p50_ms") for r in ok]),
            spread_pct([r.get("sus_msgs_per_s") for r in ok]),
            f"{total('sus_missed')}/{total('sus_duplicated')}/{total('sus_reordered')}",
            f"{total('rounds_failed')}/{total('dropped')}/{total('stray')}",
            sum(int(s.get("server_warnings") or 0) for s in runs.groups[key]),
            "; ".join(errors)[:120] or "-",
        ])
    table(["peer", "N", "first p50 ms", "answer p50 ms", "server CPU ms/round", "sustained µs/msg",
           "server CPU %", "client CPU %", "KiB/idle client", "spread p50", "spread msgs/s",
           "missed/dup/reord", "failed rounds/dropped/stray", "server warnings", "errors"], rows)


# ---------------------------------------------------------------- targets

def targets(runs):
    results = []

    def check(name, values, op, limit):
        m = median(values)
        if m is None:
            results.append(("SKIP", name, "no paired samples"))
            return
        good = m <= limit if op == "<=" else m < limit if op == "<" else m >= limit
        results.append(("PASS" if good else "FAIL", name, f"{m:.2f} {op} {limit} (reps: {', '.join(f'{v:.2f}' for v in values)})"))

    ns = sorted({n for _, n in runs.groups})
    check("N=1000 emulator-json p50 / floor", runs.ratios("emulator-json", "floor", 1000, "p50"), "<=", 1.1)
    check("N=1000 emulator-json p99 / floor", runs.ratios("emulator-json", "floor", 1000, "p99"), "<=", 1.25)
    check("N=1000 emulator-json p50 / node-ws", runs.ratios("emulator-json", "node-ws", 1000, "p50"), "<", 1)
    check("N=1000 emulator-json p99 / node-ws", runs.ratios("emulator-json", "node-ws", 1000, "p99"), "<", 1)
    check("N=1000 emulator-mqtt p50 / mosquitto", runs.ratios("emulator-mqtt", "mosquitto", 1000, "p50"), "<", 1)
    check("N=1000 emulator-mqtt p99 / mosquitto", runs.ratios("emulator-mqtt", "mosquitto", 1000, "p99"), "<", 1)
    check("N=10000 emulator-json p50 / floor", runs.ratios("emulator-json", "floor", 10000, "p50"), "<=", 1.2)
    check("N=10000 emulator-json p50 / node-ws", runs.ratios("emulator-json", "node-ws", 10000, "p50"), "<", 1)
    for n in ns:
        if runs.groups.get(("emulator-json", n)):
            check(f"N={n} sustained emulator-json msgs/s / floor", runs.ratios("emulator-json", "floor", n, "msgs/s"), ">=", 0.8)
        if runs.groups.get(("emulator-mqtt", n)):
            check(f"N={n} sustained emulator-mqtt msgs/s / mosquitto", runs.ratios("emulator-mqtt", "mosquitto", n, "msgs/s"), ">=", 2)
    for peer in ("emulator-json", "emulator-mqtt"):
        for n in ns:
            ok = runs.ok(peer, n)
            if runs.groups.get((peer, n)):
                check(f"N={n} {peer} KiB per idle client", [kib_per_client(r) for r in ok if kib_per_client(r) is not None], "<=", 8)
    for peer in EMULATORS:
        for n in ns:
            group = runs.groups.get((peer, n), [])
            if not group:
                continue
            bad = []
            for s in group:
                r = s["result"]
                issues = {k: r.get(k) for k in ("sus_missed", "sus_duplicated", "sus_reordered", "rounds_failed", "dropped")
                          if r.get(k)}
                if not s.get("ok"):
                    issues["not ok"] = r.get("error") or s.get("error") or f"rc {s.get('rc')}"
                if issues:
                    bad.append(f"rep {s['rep']}: {issues}")
            results.append(("FAIL" if bad else "PASS", f"N={n} {peer}: nothing lost, duplicated or reordered",
                            "; ".join(bad) if bad else f"{len(group)} sample(s) clean"))

    print("Targets (same-rep ratios, median across reps):")
    print()
    for verdict, name, detail in results:
        print(f"  {verdict}  {name}: {detail}")
    print()
    passed = sum(v == "PASS" for v, _, _ in results)
    failed = sum(v == "FAIL" for v, _, _ in results)
    print(f"  {passed} passed, {failed} failed, {len(results) - passed - failed} skipped")
    print()


def samples_table(runs):
    rows = []
    for s in runs.samples:
        r = s["result"]
        rows.append([s["peer"], s["n"], s["rep"], s.get("ok"), s.get("load", "-"), ms(r.get("p50_ms")), ms(r.get("p99_ms")),
                     ms(r.get("max_ms")), kilo(r.get("sus_msgs_per_s")), one(idle_mib(r)),
                     (str(r.get("error") or s.get("error") or ""))[:80]])
    table(["peer", "N", "rep", "ok", "load", "p50", "p99", "max", "msgs/s", "idle MiB", "error"], rows)


def main(argv):
    flags = {a for a in argv if a.startswith("--")}
    paths = [a for a in argv if not a.startswith("--")]
    unknown = flags - {"--targets", "--samples", "--help"}
    if not paths or "--help" in flags or unknown:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    runs = Runs(read(paths))
    if not runs.samples:
        print("no samples", file=sys.stderr)
        return 1
    main_table(runs)
    ratio_table(runs)
    diagnostics(runs)
    if "--targets" in flags:
        targets(runs)
    if "--samples" in flags:
        samples_table(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
