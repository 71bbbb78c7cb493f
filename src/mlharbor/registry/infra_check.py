"""Infra validation: load a model folder and predict on its input example in a fresh interpreter.

Run as ``python -m mlharbor.registry.infra_check MODEL_DIR [--allow-pickle] [--repeat N]``; prints one
JSON object: ``{"ok": true, "load_s": …, "predict_rows": …, "single_row_ms": [p50, p99]}`` or
``{"ok": false, "error": "…"}``. A fresh process proves the model loads from its artifacts and
declared code alone — not from whatever the training process happened to have imported.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def validate(model_dir: Path, allow_pickle: bool, repeat: int) -> dict[str, Any]:
    import pandas as pd

    from mlharbor.tracking.loader import load_payload

    started = time.perf_counter()
    model = load_payload(model_dir / "data" / "payload", allow_pickle)
    load_s = time.perf_counter() - started
    example_file = model_dir / "input_example.json"
    if not example_file.is_file():
        return {"ok": True, "load_s": load_s, "predict_rows": 0, "single_row_ms": None,
                "note": "no input example: loaded, not run"}
    raw = json.loads(example_file.read_text())
    frame = pd.DataFrame(raw["data"], columns=raw["columns"]) if "columns" in raw else pd.DataFrame(raw)
    out = model.predict(frame)
    rows = len(out) if hasattr(out, "__len__") else 1
    one = frame.head(1)
    times = []
    for _ in range(max(repeat, 1)):
        t = time.perf_counter()
        model.predict(one)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return {"ok": True, "load_s": load_s, "predict_rows": rows, "single_row_ms": [times[len(times) // 2], p99]}


def main(argv: list[str]) -> int:
    if not argv:
        print(json.dumps({"ok": False, "error": "usage: infra_check MODEL_DIR [--allow-pickle] [--repeat N]"}))
        return 2
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 50
    try:
        result = validate(Path(argv[0]), "--allow-pickle" in argv, repeat)
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
