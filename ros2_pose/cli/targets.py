"""Verbs whose first argument names a target (`ros2-pose bench transport`, `ros2-pose train dolly`).

A target is a module `<package>.<target>` exposing `add_arguments(parser)` and `run(args) -> int`,
and its module docstring's first line is its help; an optional `ALIASES` tuple gives it other
names. New targets need no change here: dropping a module into the package registers it.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import pkgutil
import sys


def _reporting(run, verb: str, errors: tuple[type[BaseException], ...]):
    """`run`, with the expected user errors (bad config, missing files) turned into one line on
    stderr and exit code 2 instead of a traceback."""
    @functools.wraps(run)
    def wrapped(args) -> int:
        try:
            return run(args)
        except errors as exc:
            print(f"{verb} {args.target} failed: {exc}", file=sys.stderr)
            return 2
    return wrapped


def register_targets(parser: argparse.ArgumentParser, package: str, metavar: str = "<target>",
                     errors: tuple[type[BaseException], ...] = ()) -> None:
    pkg = importlib.import_module(package)
    sub = parser.add_subparsers(dest="target", metavar=metavar, required=True)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if not hasattr(module, "run"):
            continue
        help_text = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None
        # ALIASES: other names a target is known by (`bench pnp` is `bench bpnp`, as issue 6 calls it)
        target = sub.add_parser(info.name, help=help_text, description=module.__doc__,
                                aliases=list(getattr(module, "ALIASES", ())))
        if hasattr(module, "add_arguments"):
            module.add_arguments(target)
        target.set_defaults(func=_reporting(module.run, parser.prog.split()[-1], errors) if errors else module.run)
