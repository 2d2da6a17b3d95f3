"""The `ros2-pose` entry point on its own: importing ros2_pose.cli.main in a bare interpreter (no
runpy, no console-script wrapper that happens to import importlib.util first) and listing the verbs."""
import subprocess
import sys

from ros2_pose.cli.main import VERBS


def test_main_lists_every_verb_from_a_bare_interpreter():
    done = subprocess.run([sys.executable, "-c", "import sys; from ros2_pose.cli.main import main; "
                           "sys.exit(main(['--help']))"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for verb in VERBS:
        assert verb in done.stdout, verb
