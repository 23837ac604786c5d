"""walletctl entry point: one sub-command per module, bad input is exit status 2 with one line per
problem naming the field path and the bad value."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from walletplatform.cli import backtest, core, demo, explain, local, operate, status
from walletplatform.models import errors

EXIT_INVALID = 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process ended by SIGPIPE
EXIT_INTERRUPTED = 128 + 2  # ... and by SIGINT (Ctrl-C)
COMMANDS = (core, backtest, operate, explain, status, demo, local)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="walletctl", description="Run and tune the WalletPlatform.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except errors.SpecError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # The reader went away (``walletctl render | head``): stop quietly, as a shell tool does, and
        # point stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:  # Ctrl-C in a command that has nothing to clean up: one line, no traceback
        print(f"walletctl {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def kubectl_plugin() -> int:
    """``kubectl wallet ...``: kubectl runs the ``kubectl-wallet`` program it finds on PATH."""
    return main()


if __name__ == "__main__":
    sys.exit(main())
