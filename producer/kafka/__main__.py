import sys

from datasentinel.producer.kafka.cli import main

sys.exit(main())
