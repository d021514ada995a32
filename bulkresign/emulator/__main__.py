"""``python -m bulkresign.emulator [OPTIONS]``: the same as ``bulkresign emulator [OPTIONS]``.

It builds only the ``emulator`` sub-command's parser, so the emulator starts without importing
the rest of the CLI.
"""

import argparse
import sys

from bulkresign.cli import ExitCode
from bulkresign.cli import emulator as command
from bulkresign.errors import BulkResignError


def main() -> int:
    """Parse ``sys.argv`` as the emulator's options and serve."""
    parser = argparse.ArgumentParser(prog="python -m bulkresign.emulator")
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["emulator", *sys.argv[1:]])
    try:
        return int(command.handle(args))
    except BulkResignError as exc:
        print(f"bulkresign emulator: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE


sys.exit(main())
