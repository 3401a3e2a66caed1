"""``python -m loyaltyrules`` is the ``loyaltyrules`` command."""

from ._cli import main

raise SystemExit(main())
