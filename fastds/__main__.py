"""`python -m fastds` is the `fastds` command."""

import sys

from fastds.cli import main

sys.exit(main())
