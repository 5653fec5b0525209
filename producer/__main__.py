"""``python -m producer``: see ``producer.cli.main``."""

from producer.cli import main

raise SystemExit(main())
