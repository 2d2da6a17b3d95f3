"""Model cards: `models/<name>/card.md`, written from the model folder's own files plus measured numbers.

The input/output spec comes from model.yaml, the ONNX parity from onnx_parity.json and the size from
the files, so a card cannot disagree with the model it describes; what was measured elsewhere
(metrics, latency, training data and command) is passed in and printed as given.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ros2_pose.deploy.model_spec import CONFIG_FILE, ONNX_FILE, WEIGHTS_FILE, load_model_config

PARITY_FILE = "onnx_parity.json"


def _table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_card(folder: str | Path, title: str, summary: str, camera: str, training: dict[str, str],
                metrics: dict[str, dict[str, Any]] | None = None, latency: dict[str, Any] | None = None,
                notes: list[str] | None = None) -> str:
    """The card's markdown. `metrics` maps an evaluation set's name to its numbers; `training` holds
    e.g. data, command, config, epochs; `latency` e.g. backend -> median ms."""
    folder = Path(folder)
    config = load_model_config(folder / CONFIG_FILE)
    sections = [f"# {title}", "", summary, ""]
    tensors = [(f"input `{t.name}`", f"{list(t.shape)} {t.dtype}") for t in config.inputs]
    tensors += [(f"output `{t.name}`", f"{list(t.shape)} {t.dtype}") for t in config.outputs]
    sections += ["## Interface", "", f"Architecture `{config.architecture}` with `{json.dumps(config.kwargs)}`.", "",
                 _table(tensors, ("tensor", "shape, dtype")), ""]
    sizes = [(name, f"{(folder / name).stat().st_size / 1e6:.2f} MB") for name in (WEIGHTS_FILE, ONNX_FILE)
             if (folder / name).is_file()]
    sections += ["## Files", "", _table(sizes, ("file", "size")), ""]
    parity_path = folder / PARITY_FILE
    if parity_path.is_file():
        parity = json.loads(parity_path.read_text())
        rows = [(name, f"{error:.2e}") for name, error in parity.get("parity_max_abs_error", {}).items()]
        sections += ["## ONNX Runtime vs PyTorch", "",
                     f"Max abs error per output on batches {parity.get('checked_batches')} (opset "
                     f"{parity.get('opset')}, tolerance {parity.get('tolerance')}, passed: {parity.get('passed')}):", "",
                     _table(rows, ("output", "max abs error")), ""]
    sections += ["## Camera assumptions", "", camera, ""]
    sections += ["## Training", "", _table([(k, v) for k, v in training.items()], ("", "")), ""]
    for name, values in (metrics or {}).items():
        sections += [f"## Metrics: {name}", "", _table([(k, _format(v)) for k, v in values.items()], ("metric", "value")), ""]
    if latency:
        sections += ["## Latency", "", _table([(k, _format(v)) for k, v in latency.items()], ("", "")), ""]
    if notes:
        sections += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(sections)


def write_card(folder: str | Path, **card) -> Path:
    path = Path(folder) / "card.md"
    path.write_text(render_card(folder, **card))
    return path
