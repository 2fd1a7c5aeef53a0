"""``python -m bananas.operator``: run the operator (see :mod:`bananas.operator.runner`)."""

from bananas.operator.runner import main

raise SystemExit(main())
