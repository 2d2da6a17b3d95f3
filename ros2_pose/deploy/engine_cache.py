"""TensorRT engine cache: one engine file per (model, TensorRT version, GPU, precision, profiles, DLA).

A serialized engine only loads on the TensorRT version and GPU it was built for; after a JetPack
upgrade an old engine either fails to deserialize or (worse) is silently mismatched. Each engine is
therefore stored as `<dir>/<stem>.<key>.engine` with a JSON sidecar `<stem>.<key>.json` recording
what it was built from. Loading compares the sidecar with the present machine and tells exactly
which of version / GPU / model differs, and how to rebuild. Pure Python: no TensorRT import here,
so this logic is tested everywhere.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any, Callable

ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"


class StaleEngineError(RuntimeError):
    """A cached engine does not match this machine/model, and rebuilding was not allowed."""


class EngineNotFoundError(FileNotFoundError):
    """No engine for this model/machine in the cache, and building was not allowed."""


@dataclasses.dataclass(frozen=True)
class EngineFingerprint:
    """Everything an engine's validity depends on."""
    model_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str
    profiles: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = ()
    dla_core: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model_sha256": self.model_sha256, "tensorrt_version": self.tensorrt_version,
                "gpu_name": self.gpu_name, "precision": self.precision,
                "profiles": [[name, list(mn), list(opt), list(mx)] for name, mn, opt, mx in self.profiles],
                "dla_core": self.dla_core}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineFingerprint":
        profiles = tuple((str(p[0]), tuple(p[1]), tuple(p[2]), tuple(p[3])) for p in data.get("profiles", []))
        return cls(model_sha256=str(data["model_sha256"]), tensorrt_version=str(data["tensorrt_version"]),
                   gpu_name=str(data["gpu_name"]), precision=str(data["precision"]), profiles=profiles,
                   dla_core=data.get("dla_core"))

    @property
    def key(self) -> str:
        """Short stable hash of all fields: the engine's file-name key."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def differences(self, built: "EngineFingerprint") -> list[str]:
        """Human-readable list of how an engine `built` with that fingerprint differs from this one."""
        out = []
        if built.tensorrt_version != self.tensorrt_version:
            out.append(f"TensorRT version: engine built with {built.tensorrt_version}, "
                       f"this machine has {self.tensorrt_version}")
        if built.gpu_name != self.gpu_name:
            out.append(f"GPU: engine built for {built.gpu_name!r}, this machine has {self.gpu_name!r}")
        if built.model_sha256 != self.model_sha256:
            out.append(f"model: engine built from ONNX sha256 {built.model_sha256[:12]}..., "
                       f"the ONNX file now has {self.model_sha256[:12]}...")
        if built.precision != self.precision:
            out.append(f"precision: engine is {built.precision}, {self.precision} requested")
        if built.profiles != self.profiles:
            out.append(f"optimisation profiles: engine has {built.to_dict()['profiles']}, "
                       f"requested {self.to_dict()['profiles']}")
        if built.dla_core != self.dla_core:
            out.append(f"DLA core: engine {built.dla_core}, requested {self.dla_core}")
        return out


def rebuild_command(onnx_path: str | Path, fingerprint: EngineFingerprint, engine_dir: str | Path) -> str:
    """The `ros2-pose engine build` command that produces the engine `fingerprint` describes."""
    parts = ["ros2-pose", "engine", "build", "--onnx", str(onnx_path), "--precision", fingerprint.precision]
    for name, mn, opt, mx in fingerprint.profiles:
        for flag, shape in (("--min", mn), ("--opt", opt), ("--max", mx)):
            parts += [flag, f"{name}:{'x'.join(str(d) for d in shape)}"]
    if fingerprint.dla_core is not None:
        parts += ["--dla-core", str(fingerprint.dla_core)]
    if fingerprint.precision == "int8":
        parts += ["--calib-images", "<DIR>"]
    parts += ["--out", str(engine_dir)]
    return " ".join(shlex.quote(p) if p != "<DIR>" else p for p in parts)


@dataclasses.dataclass
class CachedEngine:
    path: Path
    fingerprint: EngineFingerprint
    engine: Any  # the deserialised engine (whatever `deserialize` returned)
    built: bool  # True when it was (re)built during this call


class EngineCache:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def engine_path(self, stem: str, fingerprint: EngineFingerprint) -> Path:
        return self.directory / f"{stem}.{fingerprint.key}{ENGINE_SUFFIX}"

    @staticmethod
    def sidecar_path(engine_path: str | Path) -> Path:
        return Path(engine_path).with_suffix(SIDECAR_SUFFIX)

    @staticmethod
    def read_sidecar(engine_path: str | Path) -> EngineFingerprint | None:
        path = EngineCache.sidecar_path(engine_path)
        if not path.is_file():
            return None
        try:
            return EngineFingerprint.from_dict(json.loads(path.read_text(encoding="utf-8"))["fingerprint"])
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # unreadable sidecar: treated as an engine of unknown origin

    def store(self, stem: str, fingerprint: EngineFingerprint, engine_bytes: bytes,
              onnx_path: str | Path | None = None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.engine_path(stem, fingerprint)
        tmp = path.with_suffix(".engine.tmp")
        tmp.write_bytes(engine_bytes)
        tmp.replace(path)  # atomic: a reader never sees a half-written engine
        sidecar = {"fingerprint": fingerprint.to_dict(), "onnx": str(onnx_path) if onnx_path else None,
                   "engine_sha256": hashlib.sha256(engine_bytes).hexdigest(), "size_bytes": len(engine_bytes),
                   "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        self.sidecar_path(path).write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
        return path

    def foreign_engines(self, stem: str, fingerprint: EngineFingerprint) -> list[tuple[Path, EngineFingerprint | None]]:
        """Other engines of the same model stem in the cache (built elsewhere or from older ONNX)."""
        current = self.engine_path(stem, fingerprint)
        found = []
        for path in sorted(self.directory.glob(f"{stem}.*{ENGINE_SUFFIX}")):
            if path != current and path.name.count(".") == stem.count(".") + 2:
                found.append((path, self.read_sidecar(path)))
        return found

    def check_engine_file(self, engine_path: str | Path, fingerprint: EngineFingerprint) -> list[str]:
        """Why `engine_path` does not fit `fingerprint` (empty list: it fits)."""
        built = self.read_sidecar(engine_path)
        if built is None:
            return [f"no readable sidecar {self.sidecar_path(engine_path).name}: origin unknown"]
        return fingerprint.differences(built)

    def load(self, stem: str, fingerprint: EngineFingerprint, deserialize: Callable[[bytes], Any],
             build: Callable[[], bytes] | None = None, onnx_path: str | Path | None = None) -> CachedEngine:
        """The engine for `fingerprint`: loaded from the cache when its sidecar matches and it
        deserialises; otherwise rebuilt with `build` when given; otherwise StaleEngineError (a
        mismatched engine exists) or EngineNotFoundError (none exists)."""
        path = self.engine_path(stem, fingerprint)
        problems: list[str] = []
        if path.is_file():
            problems = self.check_engine_file(path, fingerprint)
            if not problems:
                engine = deserialize(path.read_bytes())
                if engine is not None:
                    return CachedEngine(path, fingerprint, engine, built=False)
                problems = [f"{path.name} did not deserialize on this TensorRT/GPU "
                            f"(TensorRT {fingerprint.tensorrt_version}, {fingerprint.gpu_name!r})"]
        else:
            for other, built in self.foreign_engines(stem, fingerprint):
                reasons = fingerprint.differences(built) if built else ["no readable sidecar: origin unknown"]
                problems.append(f"{other.name}: " + "; ".join(reasons or ["same fingerprint, other key"]))
        command = rebuild_command(onnx_path or f"{stem}.onnx", fingerprint, self.directory)
        if build is None:
            if problems:
                raise StaleEngineError(
                    f"no usable TensorRT engine for {stem} in {self.directory}:\n  " + "\n  ".join(problems)
                    + f"\nrebuild it with:\n  {command}")
            raise EngineNotFoundError(f"no TensorRT engine for {stem} ({fingerprint.precision}) in "
                                      f"{self.directory}; build it with:\n  {command}")
        engine_bytes = build()
        path = self.store(stem, fingerprint, engine_bytes, onnx_path)
        engine = deserialize(engine_bytes)
        if engine is None:
            raise RuntimeError(f"engine {path} was just built but does not deserialize")
        return CachedEngine(path, fingerprint, engine, built=True)
