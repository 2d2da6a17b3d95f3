"""A feature-map dump folder: `<name>__<layer>.npy` (N x C x H x W float32) per input set and layer,
`<name>__input.npy` (the N x 128 x 128 x 3 uint8 crops), `<name>__box.npy` and `index.json`.

Several input sets (e.g. `sim` and `real`) go into one folder by dumping with different names; the
index keeps every set. The file naming (one .npy per tensor, batch first) is the one Feature Map
Explorer reads too (seed 000), so the arrays open in other tools unchanged.

    index.json {"format": "ros2_pose.fmaps", "version": 1, "sets": {name: {"model", "source",
                "kind", "count", "input": file, "box": file, "layers": {layer: {"file", "shape"}},
                "details"}}}
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ros2_pose.insight.feature_maps import capture_feature_maps
from ros2_pose.insight.inputs import InputSet
from ros2_pose.resources import resolve_inside

FORMAT = "ros2_pose.fmaps"
VERSION = 1
INDEX = "index.json"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_LAYER = re.compile(r"^[A-Za-z0-9_.]+$")


class DumpError(ValueError):
    """A dump folder without a valid index, or a set/layer it does not hold."""


def read_index(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / INDEX
    if not path.is_file():
        raise DumpError(f"{folder} is not a feature-map dump: no {INDEX} (write one with `ros2-pose fmaps dump`)")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT or not isinstance(index.get("sets"), dict):
        raise DumpError(f"{path}: not a {FORMAT} index")
    return index


def set_name_checked(name: str) -> str:
    if not _NAME.match(name) or "__" in name:
        raise DumpError(f"set name {name!r} must be letters, digits, '_' or '-' (no '__')")
    return name


def dump_feature_maps(model, inputs: InputSet, layers: Sequence[str], out: str | Path, name: str = "data",
                      model_source: str = "", batch_size: int = 32) -> dict:
    """Run `model` on `inputs`, write the set's files into `out` and add it to the index (a set of
    the same name is replaced). Returns the set's index entry."""
    set_name_checked(name)
    for layer in layers:
        if not _LAYER.match(layer):
            raise DumpError(f"layer name {layer!r} cannot be a file name part")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = read_index(out) if (out / INDEX).is_file() else {"format": FORMAT, "version": VERSION, "sets": {}}
    maps = capture_feature_maps(model, inputs.crops, inputs.boxes, layers, batch_size=batch_size)
    entry = {"model": model_source, "source": inputs.source, "kind": inputs.kind, "count": len(inputs),
             "input": f"{name}__input.npy", "box": f"{name}__box.npy", "layers": {}, "details": inputs.details}
    np.save(out / entry["input"], np.ascontiguousarray(inputs.crops, dtype=np.uint8))
    np.save(out / entry["box"], np.asarray(inputs.boxes, np.float32))
    for layer, array in maps.items():
        file = f"{name}__{layer}.npy"
        np.save(out / file, array)
        entry["layers"][layer] = {"file": file, "shape": list(array.shape)}
    index["sets"][name] = entry
    (out / INDEX).write_text(json.dumps(index, indent=1))
    return entry


def open_layer(folder: str | Path, index: dict, set_name: str, layer: str) -> np.ndarray:
    """A set's layer, memory-mapped (files are resolved inside the dump folder only)."""
    sets = index["sets"]
    if set_name not in sets:
        raise DumpError(f"the dump holds no set {set_name!r} (sets: {sorted(sets)})")
    layers = sets[set_name]["layers"]
    if layer not in layers:
        raise DumpError(f"set {set_name!r} holds no layer {layer!r} (layers: {list(layers)})")
    return np.load(resolve_inside(folder, layers[layer]["file"]), mmap_mode="r")


def open_inputs(folder: str | Path, index: dict, set_name: str) -> np.ndarray:
    if set_name not in index["sets"]:
        raise DumpError(f"the dump holds no set {set_name!r} (sets: {sorted(index['sets'])})")
    return np.load(resolve_inside(folder, index["sets"][set_name]["input"]), mmap_mode="r")
