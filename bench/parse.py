"""Parse + validate throughput of ``parse_webhook`` against plain ``orjson.loads``.

A third column, msgspec's typed decode alone (validation without the hostile-JSON checks and
without keeping unknown fields), shows what those checks cost. All three run on the same bytes
(the provider samples as stored) in short alternating rounds of one run, so a noisy machine
moves them alike; the median of the rounds' ratios is what to quote. Writes
bench/results/parse.json and exits 1 when a ratio of parse_webhook to orjson.loads is under
the target.

    .venv/bin/python -m bench.parse [--rounds 31] [--seconds 0.05] [--target 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

from bench.report import print_table, write_results
from callstream.schemas.parse import parse_webhook
from callstream.schemas.topics import topic, topic_for_kind

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "schemas" / "samples"


def rate(fn: Callable[[bytes], object], body: bytes, seconds: float) -> float:
    """Calls per second of ``fn(body)``, timed over batches for about ``seconds``."""
    batch, calls, elapsed = 1000, 0, 0.0
    while elapsed < seconds:
        start = time.perf_counter()
        for _ in range(batch):
            fn(body)
        elapsed += time.perf_counter() - start
        calls += batch
    return calls / elapsed


def measure(body: bytes, rounds: int, seconds: float) -> dict[str, float]:
    kind = parse_webhook(body).kind  # fails early on a sample the parser refuses
    model = topic(topic_for_kind(kind)).value  # the published model, as a consumer decodes it
    typed = msgspec.json.Decoder(model, strict=False).decode
    sides: dict[str, Callable[[bytes], object]] = {
        "orjson_loads_per_s": orjson.loads,
        "parse_webhook_per_s": parse_webhook,
        "msgspec_typed_per_s": typed,
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides.items())
    for round_ in range(rounds):
        for name, fn in order if round_ % 2 == 0 else reversed(order):
            rates[name].append(rate(fn, body, seconds))
    row = {name: statistics.median(values) for name, values in rates.items()}
    row["bytes"] = len(body)
    # Ratios of each round's pair, then their median: a round's sides ran moments apart, so a
    # load that comes and goes on a shared machine moves both alike.
    baseline = rates["orjson_loads_per_s"]
    for name, key in (("parse_webhook_per_s", "ratio"), ("msgspec_typed_per_s", "msgspec_ratio")):
        row[key] = statistics.median(a / b for a, b in zip(rates[name], baseline, strict=True))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31, help="rounds per sample (median)")
    parser.add_argument("--seconds", type=float, default=0.05, help="time per round and side")
    parser.add_argument("--target", type=float, default=0.5, help="lowest acceptable ratio")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="dir of *.json samples")
    args = parser.parse_args(argv)

    results = {
        path.name: measure(path.read_bytes(), args.rounds, args.seconds)
        for path in sorted(args.samples.glob("*.json"))
    }
    print_table(
        [
            "sample",
            "bytes",
            "orjson.loads/s",
            "parse_webhook/s",
            "ratio",
            "msgspec typed/s",
            "ratio",
        ],
        [
            [
                name,
                int(row["bytes"]),
                row["orjson_loads_per_s"],
                row["parse_webhook_per_s"],
                row["ratio"],
                row["msgspec_typed_per_s"],
                row["msgspec_ratio"],
            ]
            for name, row in results.items()
        ],
    )
    figures = {"rounds": args.rounds, "seconds": args.seconds, "target": args.target}
    print(f"wrote {write_results('parse', {**figures, 'samples': results})}")
    slow = [name for name, row in results.items() if row["ratio"] < args.target]
    if slow:
        print(f"under the target ratio {args.target}: {', '.join(slow)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
