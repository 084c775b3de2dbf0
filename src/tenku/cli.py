"""``tenku`` command line. Each subcommand lives in ``tenku/commands/<name>.py`` and exposes
``register(subparsers)``; its handler imports heavy modules only when it runs, so ``tenku --help``
stays fast. A :class:`tenku.errors.TenkuError` is printed as ``error: ...`` (exit 2), never a traceback.
This is the command line's edge: the safety policy is built here from the environment
(:meth:`tenku.safety.policy.Safety.from_env`) and handed to the commands as ``args.safety``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from tenku import __version__
from tenku.errors import TenkuError


def build_parser() -> argparse.ArgumentParser:
    import tenku.commands as commands

    parser = argparse.ArgumentParser(
        prog="tenku",
        description="tenku: text-to-video with a causal 3D VAE and a spacetime-patch diffusion transformer.",
        epilog="Run `tenku COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"tenku {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"tenku.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        from tenku.safety.policy import Safety

        args.safety = Safety.from_env()
        rc = args.func(args)
        sys.stdout.flush()
    except TenkuError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`tenku verify x | head -1`): stop quietly, like other tools
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a command a closed pipe stopped
    return int(rc or 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not fail on the closed pipe again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
