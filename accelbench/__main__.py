"""`python -m accelbench`: the command line."""

from .cli import main

raise SystemExit(main())
