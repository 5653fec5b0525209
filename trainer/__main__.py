from datasentinel.trainer.cli import main

raise SystemExit(main())
