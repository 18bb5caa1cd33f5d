"""``python -m callstream`` is the ``callstream`` command."""

from callstream.cli import main

raise SystemExit(main())
