"""Command line shaped like the stalwart binary's: stalwart --config PATH | --version | --help."""
import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    __package__ = "tests.stalwart_emulator"  # pylint: disable=redefined-builtin

from tests.stalwart_emulator.schema import DEFAULT_LINE, LINES  # noqa: E402
from tests.stalwart_emulator.server import serve  # noqa: E402


def main():
    parser = argparse.ArgumentParser(prog="stalwart", description="talentmesh emulator of Stalwart 0.16's management surface")
    parser.add_argument("-c", "--config", default=os.environ.get("CONFIG_PATH", "/etc/stalwart/config.json"))
    parser.add_argument("-V", "--version", action="store_true")
    args = parser.parse_args()
    if args.version:
        line = os.environ.get("STALWART_EMULATOR_LINE") or DEFAULT_LINE
        if line not in LINES:
            print("stalwart emulator: no Stalwart %s line (known: %s)" % (line, ", ".join(sorted(LINES))), file=sys.stderr)
            return 1
        print("stalwart %s (talentmesh emulator of Stalwart %s, line %s)" % (LINES[line], LINES[line], line))
        return 0
    serve(args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
