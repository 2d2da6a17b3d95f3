"""Datasets on disk: one `.npy` per field (N leading), `manifest.json` and `splits.json`.

`DatasetWriter` fills memory-mapped `.npy` files sample by sample (memory stays bounded whatever the
bag size) and writes the manifest last, so a folder without a manifest is an unfinished build.
`ArrayDataset` is a torch Dataset reading them back memory-mapped. Layout (docs/DESIGN.md):

    manifest.json  {"format": "ros2_pose.dataset", "version": 1, "task", "count", "fields": {name:
                    {"file", "dtype", "shape", "count"}}, "references": {out: {"source", "index"}},
                    "sources": [{"path", "sha256", "bytes"}], "sync": SyncReport, "parameters", ...}
    splits.json    {"seed", "fractions", "guard", "train": [...], "val": [...], "test": [...]}
    <field>.npy

A field normally has one row per sample. A *shared* field (e.g. the frames that several motion
samples use) has rows of its own and is reached through a `references` entry: sample i's output
`out` is `source[index[i]]`, so no image is stored twice.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from numpy.lib.format import open_memmap

from ros2_pose.resources import resolve_inside

FORMAT = "ros2_pose.dataset"
VERSION = 1
MANIFEST = "manifest.json"
SPLITS = "splits.json"
SPLIT_NAMES = ("train", "val", "test")


class DatasetError(ValueError):
    """A dataset folder that is incomplete, inconsistent or unsafe to read."""


@dataclass(frozen=True)
class FieldSpec:
    """dtype and per-sample shape of one field; `rows` set for a shared field with its own length."""

    dtype: str
    shape: tuple[int, ...]
    rows: int | None = None

    @classmethod
    def of(cls, dtype, shape: Sequence[int], rows: int | None = None) -> "FieldSpec":
        return cls(np.dtype(dtype).str, tuple(int(s) for s in shape), rows)


def sha256_of(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def bag_sources(paths: Iterable[str | Path]) -> list[dict]:
    """`sources` entries for the manifest: each bag file (a bag folder's every file) with its sha256."""
    sources = []
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            sources.append({"path": str(f), "sha256": sha256_of(f), "bytes": f.stat().st_size})
    return sources


class DatasetWriter:
    """Writes `count` samples of the given fields into `folder` (created; must be empty or absent).

    fields: name -> FieldSpec (or (dtype, shape) tuple). `write(index, sample)` fills row `index` of
    every per-sample field (missing keys are left zero); `append(sample)` writes the next row;
    `write_shared(name, index, value)` fills a shared field. `finish(...)` flushes, drops unwritten
    trailing rows and writes manifest.json and splits.json."""

    def __init__(self, folder: str | Path, task: str, fields: dict[str, FieldSpec | tuple], count: int,
                 references: dict[str, dict] | None = None):
        self.folder = Path(folder)
        if self.folder.exists() and any(self.folder.iterdir()):
            raise DatasetError(f"output folder {self.folder} exists and is not empty; choose a new one")
        if count <= 0:
            raise DatasetError(f"a dataset needs at least one sample, got count={count}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.task = task
        self.count = int(count)
        self.specs = {n: s if isinstance(s, FieldSpec) else FieldSpec.of(*s) for n, s in fields.items()}
        self.references = dict(references or {})
        for out, ref in self.references.items():
            if ref["source"] not in self.specs or ref["index"] not in self.specs:
                raise DatasetError(f"reference {out!r} names unknown fields {ref}")
        self.arrays: dict[str, np.memmap] = {}
        for name, spec in self.specs.items():
            rows = self.count if spec.rows is None else spec.rows
            self.arrays[name] = open_memmap(self.folder / f"{name}.npy", mode="w+", dtype=np.dtype(spec.dtype),
                                            shape=(rows, *spec.shape))
        self.written = 0
        self.bytes_written = 0

    def write(self, index: int, sample: dict[str, Any]) -> None:
        if not 0 <= index < self.count:
            raise IndexError(f"sample index {index} outside 0..{self.count - 1}")
        for name, value in sample.items():
            spec = self.specs.get(name)
            if spec is None or spec.rows is not None:
                raise DatasetError(f"{name!r} is not a per-sample field of this dataset ({sorted(self.specs)})")
            value = np.asarray(value)
            if value.shape != spec.shape:
                raise DatasetError(f"field {name!r}: sample shape {value.shape}, expected {spec.shape}")
            self.arrays[name][index] = value
            self.bytes_written += value.nbytes
        self.written = max(self.written, index + 1)

    def append(self, sample: dict[str, Any]) -> int:
        index = self.written
        self.write(index, sample)
        return index

    def write_shared(self, name: str, index: int, value) -> None:
        value = np.asarray(value)
        spec = self.specs[name]
        if value.shape != spec.shape:
            raise DatasetError(f"field {name!r}: row shape {value.shape}, expected {spec.shape}")
        self.arrays[name][index] = value
        self.bytes_written += value.nbytes

    def _truncate(self, name: str, rows: int) -> None:
        """Rewrite a field with its first `rows` rows, chunk by chunk (memory-bounded)."""
        old = self.arrays.pop(name)
        path = self.folder / f"{name}.npy"
        tmp = self.folder / f".{name}.npy.tmp"
        new = open_memmap(tmp, mode="w+", dtype=old.dtype, shape=(rows, *old.shape[1:]))
        step = max(1, (64 << 20) // max(1, old[0].nbytes if len(old) else 1))
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            new[start:stop] = old[start:stop]
        new.flush()
        del new, old
        os.replace(tmp, path)

    def finish(self, *, sources: list[dict] | None = None, sync: dict | None = None,
               parameters: dict | None = None, split_groups: np.ndarray | None = None,
               sequences: np.ndarray | None = None, fractions: Sequence[float] = (0.8, 0.1, 0.1),
               seed: int = 0, guard: int = 1, block_size: int | None = None,
               extra: dict | None = None) -> dict:
        """Flush, drop unwritten rows, write splits.json and manifest.json (last); return the manifest.

        Splits are made over `split_groups` (sample -> frame ordinal, so crops of one frame stay in
        one split) in contiguous blocks within `sequences` (see `make_splits`)."""
        if self.written == 0:
            raise DatasetError("no sample was written; refusing to finish an empty dataset")
        count = self.written
        for name, spec in self.specs.items():
            self.arrays[name].flush()
            if spec.rows is None and count < self.count:
                self._truncate(name, count)
        self.arrays.clear()
        groups = np.arange(count) if split_groups is None else np.asarray(split_groups)[:count]
        seqs = np.zeros(count, dtype=np.int64) if sequences is None else np.asarray(sequences)[:count]
        splits = make_splits(groups, seqs, fractions=fractions, seed=seed, guard=guard, block_size=block_size)
        (self.folder / SPLITS).write_text(json.dumps(
            {"seed": seed, "fractions": list(fractions), "guard": guard,
             **{k: [int(i) for i in v] for k, v in splits.items()}}))
        fields = {}
        for name, spec in self.specs.items():
            rows = count if spec.rows is None else spec.rows
            fields[name] = {"file": f"{name}.npy", "dtype": spec.dtype, "shape": list(spec.shape),
                            "count": rows, "shared": spec.rows is not None}
        manifest = {
            "format": FORMAT, "version": VERSION, "task": self.task, "count": count,
            "fields": fields, "references": self.references,
            "sources": sources or [], "sync": sync or {}, "parameters": parameters or {},
            "splits": {k: len(v) for k, v in splits.items()},
            **(extra or {}),
        }
        tmp = self.folder / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, self.folder / MANIFEST)
        return manifest


def make_splits(groups: np.ndarray, sequences: np.ndarray, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                seed: int = 0, guard: int = 1, block_size: int | None = None) -> dict[str, np.ndarray]:
    """Deterministic train/val/test sample indices, split by contiguous blocks of frames.

    groups: per sample, the ordinal of the frame it comes from (samples sharing a frame stay
    together); sequences: per sample, its sequence id (blocks never span a sequence). The frames of
    each sequence are cut into blocks of `block_size` frames (default: ~1/20 of the frames), the
    blocks shuffled with `seed` and dealt out to the splits by `fractions`. `guard` frames at each
    border between blocks of different splits are dropped, so neighbouring frames never sit on both
    sides of a split."""
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise DatasetError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    groups = np.asarray(groups, dtype=np.int64)
    sequences = np.asarray(sequences, dtype=np.int64)
    frame_keys, sample_frame = np.unique(np.stack([sequences, groups], 1), axis=0, return_inverse=True)
    sample_frame = sample_frame.reshape(-1)
    n_frames = len(frame_keys)
    if block_size is None:
        block_size = max(1, n_frames // 20)
    # block id per frame: consecutive frames of one sequence, at most block_size long
    blocks = np.zeros(n_frames, dtype=np.int64)
    block, start = 0, 0
    for f in range(n_frames):
        if f > 0 and (frame_keys[f, 0] != frame_keys[f - 1, 0] or f - start >= block_size):
            block, start = block + 1, f
        blocks[f] = block
    n_blocks = block + 1
    order = np.random.default_rng(seed).permutation(n_blocks)
    block_sizes = np.bincount(blocks, minlength=n_blocks)
    targets = np.cumsum(fractions) * n_frames
    block_split = np.empty(n_blocks, dtype=np.int64)
    filled = 0
    for b in order:
        # the split whose share the middle of this block falls into
        block_split[b] = min(int(np.searchsorted(targets, filled + block_sizes[b] / 2.0, side="right")), 2)
        filled += block_sizes[b]
    frame_split = block_split[blocks]
    keep = np.ones(n_frames, dtype=bool)
    if guard > 0:
        for f in range(1, n_frames):
            same_sequence = frame_keys[f, 0] == frame_keys[f - 1, 0]
            if same_sequence and frame_split[f] != frame_split[f - 1]:
                # drop `guard` frames on the later block's side of the border
                for k in range(f, min(n_frames, f + guard)):
                    if frame_keys[k, 0] == frame_keys[f, 0]:
                        keep[k] = False
    sample_split = frame_split[sample_frame]
    sample_keep = keep[sample_frame]
    return {name: np.flatnonzero((sample_split == k) & sample_keep) for k, name in enumerate(SPLIT_NAMES)}


def read_manifest(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a dataset folder (no such directory)")
    if not path.is_file():
        raise DatasetError(f"{folder} has no {MANIFEST}: not a dataset, or its build did not finish")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a {FORMAT} manifest (format={manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise DatasetError(f"{path}: dataset version {manifest.get('version')} is not supported (expected {VERSION})")
    return manifest


def open_fields(folder: str | Path, manifest: dict, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Memory-map the fields (all, or `names`), checking file containment, dtype and shape against the
    manifest and that no field file is missing or unexpected."""
    folder = Path(folder)
    fields = manifest["fields"]
    for name, spec in fields.items():
        try:
            resolve_inside(folder, spec["file"])
        except ValueError as exc:
            raise DatasetError(f"manifest field {name!r} points outside the dataset folder: {spec['file']!r}") from exc
    listed = {spec["file"] for spec in fields.values()}
    extra = sorted(p.name for p in folder.glob("*.npy") if p.name not in listed)
    if extra:
        raise DatasetError(f"{folder} holds .npy files the manifest does not list: {extra}")
    wanted = list(fields) if names is None else list(names)
    arrays = {}
    for name in wanted:
        if name not in fields:
            raise DatasetError(f"no field {name!r} in {folder} (fields: {sorted(fields)})")
        spec = fields[name]
        try:
            path = resolve_inside(folder, spec["file"])
        except ValueError as exc:
            raise DatasetError(f"manifest field {name!r} points outside the dataset folder: {spec['file']!r}") from exc
        if not path.is_file():
            raise DatasetError(f"field {name!r}: file {path.name} is missing from {folder}")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise DatasetError(f"field {name!r}: {path.name} is not a readable .npy file ({exc})") from exc
        expected = (spec["count"], *spec["shape"])
        if array.shape != expected or array.dtype != np.dtype(spec["dtype"]):
            raise DatasetError(f"field {name!r}: {path.name} has shape {array.shape} dtype {array.dtype}, "
                               f"manifest says {expected} {np.dtype(spec['dtype'])}")
        arrays[name] = array
    return arrays


def read_splits(folder: str | Path, count: int) -> dict[str, np.ndarray]:
    path = Path(folder) / SPLITS
    if not path.is_file():
        raise DatasetError(f"{folder} has no {SPLITS}")
    data = json.loads(path.read_text())
    splits = {}
    for name in SPLIT_NAMES:
        indices = np.asarray(data.get(name, []), dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= count):
            raise DatasetError(f"{SPLITS}: split {name!r} has indices outside 0..{count - 1}")
        splits[name] = indices
    return splits


class SharedRows:
    """Rows of a shared field seen through an index, gathered only when read: `view[key]` is
    `source[index[key]]` (key: an int, slice or index array over the samples, optionally with a
    second key over the index's own axes, e.g. `view[:, 1]`). A motion split's frames this way
    take the memory of the frames themselves, not of every window that repeats them (a sample of
    3 frames at 3 distances holds each frame about 9 times). numpy's array protocol materialises it."""

    def __init__(self, source: np.ndarray, index: np.ndarray):
        index = np.asarray(index, np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(source)):
            raise DatasetError(f"shared-row index outside 0..{len(source) - 1}")
        self.source, self.index = source, index

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.index.shape, *self.source.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.source.dtype

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> np.ndarray:
        rows = self.index[key]
        return np.asarray(self.source[rows.ravel()]).reshape(*rows.shape, *self.source.shape[1:])

    def __array__(self, dtype=None, copy=None):
        array = self[...]
        return array if dtype is None else array.astype(dtype, copy=False)

    @classmethod
    def concatenate(cls, views: Sequence["SharedRows"]) -> "SharedRows":
        """One view over several (their sources stacked, indices shifted to match)."""
        offsets = np.cumsum([0] + [len(v.source) for v in views[:-1]])
        return cls(np.concatenate([np.asarray(v.source) for v in views]),
                   np.concatenate([v.index + offset for v, offset in zip(views, offsets)]))


class ArrayDataset:
    """A torch-compatible Dataset over a dataset folder's split (`"train"`, `"val"`, `"test"` or
    `"all"`), reading memory-mapped `.npy` files. Items are dicts name -> numpy array (torch's
    default collate turns them into tensors); `transform(sample) -> sample` is applied last."""

    def __init__(self, folder: str | Path, split: str = "train", fields: Sequence[str] | None = None,
                 transform: Callable[[dict], dict] | None = None):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.task = self.manifest["task"]
        count = int(self.manifest["count"])
        references = self.manifest.get("references", {})
        per_sample = [n for n, s in self.manifest["fields"].items() if not s.get("shared")]
        available = per_sample + list(references)
        wanted = available if fields is None else list(fields)
        unknown = [f for f in wanted if f not in available]
        if unknown:
            raise DatasetError(f"unknown fields {unknown} (this dataset has {sorted(available)})")
        needed = {f for f in wanted if f not in references}
        for f in wanted:
            if f in references:
                needed |= {references[f]["source"], references[f]["index"]}
        self.arrays = open_fields(self.folder, self.manifest, sorted(needed))
        self.fields = wanted
        self.references = {f: references[f] for f in wanted if f in references}
        if split == "all":
            self.indices = np.arange(count)
        elif split in SPLIT_NAMES:
            self.indices = read_splits(self.folder, count)[split]
        else:
            raise DatasetError(f"unknown split {split!r}: use one of {SPLIT_NAMES + ('all',)}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} outside a split of {len(self)} samples")
        row = int(self.indices[i])
        sample = {}
        for name in self.fields:
            if name in self.references:
                ref = self.references[name]
                sample[name] = np.asarray(self.arrays[ref["source"]][np.asarray(self.arrays[ref["index"]][row])])
            else:
                sample[name] = np.array(self.arrays[name][row])
        return self.transform(sample) if self.transform else sample
