"""Entry point: `python main.py --help`."""

import sys

from intercom_responder.cli import main

if __name__ == "__main__":
    sys.exit(main())
