"""README's first two commands (set-up, tests) are exactly what CI runs, in that order."""
import re
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
