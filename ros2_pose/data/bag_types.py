"""The rosbags typestore that knows every message type ros2_pose writes into or reads from bags.

rosbags ships the standard ROS 2 Kilted types (sensor_msgs, geometry_msgs, tf2_msgs, ...); our own
`ros2_pose_msgs/msg/*` are registered from the very `.msg` files that colcon builds, so the bag
definitions and type hashes (RIHS01) are the ones a real ROS 2 graph uses. ROS-free: no rclpy.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

CUSTOM_PACKAGE = "ros2_pose_msgs"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class MessageTypeError(LookupError):
    """A message type is not known to the typestore and no `.msg` definition for it was found."""


def _distro_store() -> Stores:
    """ROS 2 Kilted, or the newest ROS 2 store this rosbags version has (older rosbags lack KILTED)."""
    for name in ("ROS2_KILTED", "ROS2_JAZZY", "ROS2_HUMBLE"):
        if hasattr(Stores, name):
            return getattr(Stores, name)
    raise RuntimeError("this rosbags version has no ROS 2 typestore (need rosbags >= 0.10)")


def _share_dirs() -> list[Path]:
    """Every `<prefix>/share` on AMENT_PREFIX_PATH (colcon install and the venv's ROS wheels)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [Path(p) / "share" for p in prefixes]


def msg_dir(package: str) -> Path | None:
    """The folder holding `package`'s `.msg` files: the source checkout's interfaces/ first (so a
    developer's edits are what is registered), then `share/<package>/msg` of an installed prefix."""
    candidates = [_SOURCE_ROOT / "interfaces" / package / "msg"]
    candidates += [share / package / "msg" for share in _share_dirs()]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.msg")):
            return folder
    return None


def _types_from_msg_dir(package: str, folder: Path) -> dict:
    types: dict = {}
    for path in sorted(folder.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{package}/msg/{path.stem}"))
    return types


@functools.lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The (cached) typestore: ROS 2 Kilted standard types plus ros2_pose_msgs (plus tf2_msgs when
    the standard store lacks it)."""
    store = get_typestore(_distro_store())
    folder = msg_dir(CUSTOM_PACKAGE)
    if folder is None:
        raise MessageTypeError(
            f"no .msg files for {CUSTOM_PACKAGE}: looked in {_SOURCE_ROOT / 'interfaces'} and in "
            f"share/{CUSTOM_PACKAGE}/msg of AMENT_PREFIX_PATH (source scripts/activate.sh?)")
    types = _types_from_msg_dir(CUSTOM_PACKAGE, folder)
    if "tf2_msgs/msg/TFMessage" not in store.fielddefs:
        tf_folder = msg_dir("tf2_msgs")
        if tf_folder is None:
            raise MessageTypeError("tf2_msgs/msg/TFMessage is neither in rosbags' store nor on disk")
        types.update(_types_from_msg_dir("tf2_msgs", tf_folder))
    store.register(types)
    return store


def ensure_type(msgtype: str) -> Typestore:
    """The typestore, with `msgtype` (e.g. `my_pkg/msg/Thing`) registered from its package's
    installed `.msg` files if it was not known yet; raises MessageTypeError if it cannot be found.

    Used by the recorder, which meets whatever types the graph publishes."""
    store = typestore()
    if msgtype in store.fielddefs:
        return store
    package = msgtype.split("/", 1)[0]
    folder = msg_dir(package)
    if folder is None:
        raise MessageTypeError(
            f"message type {msgtype!r} is unknown to the rosbags typestore and no .msg files of "
            f"package {package!r} were found under share/ of AMENT_PREFIX_PATH")
    store.register(_types_from_msg_dir(package, folder))
    if msgtype not in store.fielddefs:
        raise MessageTypeError(f"{msgtype!r} is not defined in {folder}")
    return store
