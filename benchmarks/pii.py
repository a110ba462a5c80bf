#!/usr/bin/env python
"""PII benchmark: per-kind recall and precision, throughput and memory of each detector.

Runs every detector (`patterns`, and `presidio` when its packages are installed) on the labelled
sets under tests/curation/ (pii_labelled.jsonl, the people set the rules were written against;
pii_heldout.jsonl, written afterwards and not tuned on) and the contact/secret set of pii_cases.py.
Throughput is over 1,000 strings cycled from all sets, after one warm-up call (the model's load time
and resident memory are reported apart). No database needed.
Usage: .venv/bin/python benchmarks/pii.py [--detectors patterns,presidio] [--strings 1000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curation import pii  # noqa: E402
from curation.pii import model  # noqa: E402
from curation.pii.evaluation import Tally, evaluate, load_jsonl  # noqa: E402
from tests.curation.pii_cases import cases  # noqa: E402

SETS = {
    "people": load_jsonl(ROOT / "tests/curation/pii_labelled.jsonl"),
    "held-out": load_jsonl(ROOT / "tests/curation/pii_heldout.jsonl"),
    "contact": [(t, [(k, t.index(v), t.index(v) + len(v)) for k, v in labels]) for t, labels in cases()],
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _table(name: str, tallies: dict[str, Tally]) -> None:
    print(f"  {name}:")
    for kind, t in sorted(tallies.items()):
        print(f"    {kind:16} recall {t.recall:6.3f} ({t.recalled:3}/{t.expected:3})  "
              f"precision {t.precision:6.3f} ({t.correct:3}/{t.found:3})")  # fmt: skip


def run(detector: str, strings: int) -> None:
    before, started = _rss_mb(), time.perf_counter()
    if detector != "patterns" and not model.available(detector):
        print(f"{detector}: not installed, skipped")
        return
    pii.find_pii("warm up, Mr John Smith", detector)
    load_s, load_mb = time.perf_counter() - started, _rss_mb() - before
    print(f"{detector}: load {load_s:.2f} s, +{load_mb:.0f} MB peak RSS")
    for name, labelled in SETS.items():
        _table(name, evaluate(labelled, lambda text: pii.find_pii(text, detector)))
    texts = [text for labelled in SETS.values() for text, _ in labelled]
    batch = [texts[i % len(texts)] for i in range(strings)]
    started = time.perf_counter()
    for text in batch:
        pii.scrub(text, detector)
    elapsed = time.perf_counter() - started
    print(f"  throughput: {strings / elapsed:,.0f} strings/s, {elapsed * 1000 / strings * 1000:,.0f} ms per 1k strings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(pii.DETECTORS))
    parser.add_argument("--strings", type=int, default=1000)
    args = parser.parse_args()
    for detector in args.detectors.split(","):
        run(detector, args.strings)


if __name__ == "__main__":
    main()
