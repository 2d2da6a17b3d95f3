"""README's first two commands (set-up, tests) are exactly what CI runs, in that order, and its main
command's executable is there after the set-up."""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def ci_commands():
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_ci_runs_readme_setup_then_tests_verbatim():
    setup, tests = readme_commands()[:2]
    ci = ci_commands()
    assert setup in ci and tests in ci, (setup, tests, ci)
    assert ci.index(setup) < ci.index(tests)


def test_readme_setup_and_test_scripts_exist():
    setup, tests = readme_commands()[:2]
    for command in (setup, tests):
        script = command.split()[1]
        assert (ROOT / script).is_file(), script


def test_readme_main_command_finds_ros2_pose_after_activation():
    """The main command (`source scripts/activate.sh && ros2-pose ...`) runs in a fresh shell after
    the set-up: the editable install may put console scripts in .venv/lib/ros2_pose (setup.cfg), and
    the set-up must still leave `ros2-pose` on PATH."""
    main_command = readme_commands()[2]
    activate, verb = (part.strip() for part in main_command.split("&&"))
    assert activate == "source scripts/activate.sh" and verb.startswith("ros2-pose "), main_command
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # not this test run's venv: what a new shell has
    done = subprocess.run(["bash", "-c", f"{activate} && ros2-pose --help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: ros2-pose" in done.stdout
