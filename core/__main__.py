"""`python -m core` is the same as `python -m core.cli`."""

import sys

from core.cli import main

sys.exit(main())
