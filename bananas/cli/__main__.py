"""``python -m bananas.cli``: the ``bananas`` command."""

import sys

from bananas.cli import main

sys.exit(main())
