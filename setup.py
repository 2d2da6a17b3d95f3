"""ros2_pose: an ament_python package; also pip-installable (editable) into the set-up venv."""
from glob import glob
import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "ros2_pose"


def node_executables():
    """Every module in ros2_pose/nodes/ (not starting with `_`) is a node executable of that name,
    run by its `main()`; launch files and `ros2-pose up` refer to nodes by these names."""
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in (here / PACKAGE / "nodes").glob("*.py") if not p.stem.startswith("_"))


def data_tree(folder):
    """(share/ros2_pose/<dir>, [files]) pairs for every file below `folder`, keeping sub-folders."""
    pairs = {}
    for path in glob(os.path.join(folder, "**", "*"), recursive=True):
        if os.path.isfile(path):
            pairs.setdefault(os.path.join("share", PACKAGE, os.path.dirname(path)), []).append(path)
    return sorted(pairs.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, PACKAGE + ".*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *data_tree("launch"),
        *data_tree("config"),
        *data_tree("models"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="ros2_pose maintainers",
    maintainer_email="maintainers@ros2-pose.dev",
    description="Camera-based 6DoF pose, body pose and ego-motion for ROS 2 robots.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "ros2-pose = ros2_pose.cli.main:main",
            *(f"{node} = {PACKAGE}.nodes.{node}:main" for node in node_executables()),
        ],
    },
)
