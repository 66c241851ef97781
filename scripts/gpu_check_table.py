"""The one table of scripts/gpu_check.sh: each figure of its steps against issue 17's target.

python scripts/gpu_check_table.py OUT_DIR     # exit 1 when a check missed or did not run
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

Row = tuple[str, str, str, bool | None]  # check, measured, target, met (None: not measured)


def load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def step_note(out: Path, name: str) -> str:
    status = out / f"{name}.status"
    if not status.is_file():
        return "did not run"
    code, seconds = status.read_text().split()
    if code in ("124", "137"):
        return f"timed out after {seconds} s"
    return f"exit {code} after {seconds} s"


def test_rows(out: Path) -> list[Row]:
    report = out / "gpu-tests.xml"
    if not report.is_file():
        return [("gpu tests", step_note(out, "gpu-tests"), "all pass", None)]
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    n, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0))
    failed += int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    measured = f"{n - failed - skipped} passed, {failed} failed, {skipped} skipped"
    return [("gpu tests (pytest -m gpu)", measured, "all pass", failed == 0 and skipped == 0)]


def loop_rows(out: Path) -> list[Row]:
    figures = load(out / "training_loop.json")
    if figures is None:
        note = step_note(out, "training-loop")
        return [
            ("worker CUDA loop / hand loop", note, ">= 0.95", None),
            ("bf16 / fp32 samples/s, CNN batch 256", note, ">= 1.5", None),
        ]
    worst = figures["lowest_worker_over_hand"]
    rows: list[Row] = [
        (
            "worker CUDA loop / hand loop",
            f"{worst:.3f} (lowest of {len(figures['batches'])} batch sizes)",
            ">= 0.95",
            worst >= 0.95,
        )
    ]
    precision = figures.get("precision")
    if precision:
        fp32, bf16 = precision["fp32"], precision["bf16"]
        speed = bf16["samples_per_s"] / fp32["samples_per_s"]
        gap = 100 * (bf16["best_val_accuracy"] - fp32["best_val_accuracy"])
        rows += [
            ("bf16 / fp32 samples/s, CNN batch 256", f"{speed:.2f}", ">= 1.5", speed >= 1.5),
            ("bf16 - fp32 best val accuracy", f"{gap:+.2f} points", "within 0.5", abs(gap) <= 0.5),
        ]
    return rows


def packing_rows(out: Path) -> list[Row]:
    figures = load(out / "gpu_packing.json")
    targets = {"8": 4.0, "16": 6.0}
    if figures is None:
        note = step_note(out, "gpu-packing")
        return [
            (f"{n} packed / 1 at a time, samples/s", note, f">= {t:g}", None)
            for n, t in targets.items()
        ]
    levels = figures["levels"]
    base = levels["1"]["samples_per_s"]
    rows: list[Row] = []
    for n, target in targets.items():
        ratio = levels[n]["samples_per_s"] / base if n in levels else None
        measured = "not run" if ratio is None else f"{ratio:.2f} ({levels[n]['on_gpu']} on GPU)"
        rows.append(
            (
                f"{n} packed / 1 at a time, samples/s",
                measured,
                f">= {target:g}",
                None if ratio is None else ratio >= target,
            )
        )
    return rows


def main() -> int:
    out = Path(sys.argv[1])
    rows = test_rows(out) + loop_rows(out) + packing_rows(out)
    device = next(
        (
            f["device"]
            for f in (load(out / "training_loop.json"), load(out / "gpu_packing.json"))
            if f
        ),
        "?",
    )
    header = ("check", "measured", "target", "met")
    cells = [(c, m, t, "-" if ok is None else ("yes" if ok else "NO")) for c, m, t, ok in rows]
    widths = [max(len(r[i]) for r in (header, *cells)) for i in range(4)]
    print(f"\ngpu_check on {device} (logs and figures in {out})")
    for i, row in enumerate((header, *cells)):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("-|-".join("-" * w for w in widths))
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
