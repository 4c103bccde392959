"""`python -m taskmap ...`: the same command line as the `taskmap` console script."""
import sys

from .conformance.cli import main

sys.exit(main())
