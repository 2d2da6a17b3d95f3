"""Where the package's data folders (config/, launch/, models/) are.

In a source checkout (editable install) they sit beside the `ros2_pose` Python package; in a
colcon/apt install they are under `share/ros2_pose`. The checkout wins so that a developer's edits
are what runs.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = "ros2_pose"
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def package_share() -> Path:
    """The folder holding config/, launch/ and models/."""
    if (SOURCE_ROOT / "package.xml").is_file() and (SOURCE_ROOT / "config").is_dir():
        return SOURCE_ROOT
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError as exc:  # pragma: no cover - only on broken installs
        raise FileNotFoundError(
            "ros2_pose's data folders were not found beside the package and ament_index_python "
            "is not importable") from exc
    return Path(get_package_share_directory(PACKAGE))


def _inside(folder: Path, name: str) -> Path:
    """folder/name, refusing names that would leave the folder (`..`, absolute paths)."""
    folder = folder.resolve()
    path = (folder / name).resolve()
    if folder != path and folder not in path.parents:
        raise ValueError(f"{name!r} is outside {folder}")
    return path


def config_file(name: str) -> Path:
    """config/<name>, with `.yaml` added when no suffix is given."""
    if not Path(name).suffix:
        name += ".yaml"
    path = _inside(package_share() / "config", name)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    return path


def launch_dir() -> Path:
    return package_share() / "launch"


def model_dir(name: str) -> Path:
    """models/<name>/ of a shipped model; a clear error naming the ones that exist otherwise."""
    root = package_share() / "models"
    path = _inside(root, name)
    if not path.is_dir():
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise FileNotFoundError(f"no shipped model {name!r} in {root} (available: {known or 'none'})")
    return path


def shipped_models() -> list[str]:
    """Names of the models shipped in models/ (folders with a model.yaml)."""
    root = package_share() / "models"
    return sorted(p.name for p in root.iterdir() if (p / "model.yaml").is_file()) if root.is_dir() else []


def model_location(name_or_folder: str | Path) -> Path:
    """A shipped model's folder by name (models/<name>), or an explicit folder / .onnx path."""
    path = Path(name_or_folder).expanduser()
    if path.is_absolute() or path.exists() or len(path.parts) > 1:
        if not path.exists():
            raise FileNotFoundError(f"model path {path} does not exist")
        return path
    return model_dir(str(name_or_folder))


def resolve_inside(folder: str | Path, name: str | Path) -> Path:
    """Public form of the containment check, for paths read from configs, manifests and bags."""
    return _inside(Path(folder), str(name))
