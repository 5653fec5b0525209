"""``datasentinel-produce``: see ``producer.cli.main``."""

from datasentinel.producer.cli import main

raise SystemExit(main())
