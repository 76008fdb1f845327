"""Allow ``python -m sqa``."""

import sys

from sqa.cli import main

sys.exit(main())
