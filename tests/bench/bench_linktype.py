"""Link classifier on two generated suites: confusion matrix, accuracy, time to a verdict per class.

Run with `make bench`. 200 randomized links per class from each generator:

- `tests/linksim.py`, drawn from the research notes the rules were written from (delay, jitter,
  loss, Wi-Fi, bufferbloat episodes, unsynced clocks, 120-600 s): consistency;
- `tests/linksim_heldout.py`, held out: each medium's mechanism with parameters from published
  measurements (docs/linktype.md), busy radios, half the clocks unsynced: closer to the field.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Callable

import pytest

from agent.linktype.classify import CLASSES, UNKNOWN, Observation, classify
from tests import linksim, linksim_heldout
from tests.linksim import prefix

PER_CLASS = 200
TTV_PER_CLASS = 40
LENGTHS = (10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
GENERATORS: dict[str, Callable[..., tuple[Observation, dict]]] = {
    "linksim": linksim.simulate,
    "heldout": linksim_heldout.simulate,
}
FLOOR = {"linksim": 0.95, "heldout": 0.80}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_bench_classifier_confusion_matrix_and_accuracy(name):
    simulate = GENERATORS[name]
    labels = (*CLASSES, UNKNOWN)
    matrix = {k: dict.fromkeys(labels, 0) for k in CLASSES}
    cpu = []
    for ci, kind in enumerate(CLASSES):
        for i in range(PER_CLASS):
            seed = 10_000 * (ci + 1) + i
            duration = random.Random(seed).choice((120, 180, 300, 600))
            obs, _ = simulate(kind, seed, duration_s=duration)
            t0 = time.perf_counter()
            verdict = classify(obs)
            cpu.append(time.perf_counter() - t0)
            matrix[kind][verdict.link_type] += 1
    total = PER_CLASS * len(CLASSES)
    correct = sum(matrix[k][k] for k in CLASSES)
    wrong = sum(matrix[k][c] for k in CLASSES for c in CLASSES if c != k)
    print(f"\n{name}: confusion matrix ({PER_CLASS} links per class; rows = truth, columns = verdict)")
    print("| truth \\ verdict | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for k in CLASSES:
        print(f"| {k} | " + " | ".join(str(matrix[k][c]) for c in labels) + " |")
    print(f"accuracy {100 * correct / total:.1f}% ({correct}/{total}); wrong class (not unknown) {wrong}")
    print(f"classifier CPU per verdict: median {1000 * statistics.median(cpu):.1f} ms, max {1000 * max(cpu):.1f} ms")
    assert correct / total >= FLOOR[name]


@pytest.mark.parametrize("name", list(GENERATORS))
def test_bench_time_to_verdict_per_class(name):
    """Shortest observation after which the verdict is right and stays right (600-s series)."""
    simulate = GENERATORS[name]
    print(f"\n{name}: time to verdict ({TTV_PER_CLASS} links per class, observation cut at {LENGTHS} s)")
    for ci, kind in enumerate(CLASSES):
        times = []
        never = 0
        for i in range(TTV_PER_CLASS):
            obs, _ = simulate(kind, 90_000 + 1000 * ci + i, duration_s=600)
            right = [classify(prefix(obs, n)).link_type == kind for n in LENGTHS]
            first = next((j for j in range(len(LENGTHS)) if all(right[j:])), None)
            if first is None:
                never += 1
            else:
                times.append(LENGTHS[first])
        q = statistics.quantiles(times, n=10) if len(times) > 1 else times or [float("nan")]
        median = statistics.median(times) if times else float("nan")
        print(f"{kind:>14}: median {median:g} s, p90 {q[-1]:g} s, not settled within 600 s: {never}/{TTV_PER_CLASS}")
