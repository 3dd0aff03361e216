"""``python -m mbd ...``: the ``mbd`` command line, for an environment whose scripts
folder is not on PATH."""

import sys

from mbd.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
