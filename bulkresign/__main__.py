"""``python -m bulkresign`` is the ``bulkresign`` command."""

import sys

from bulkresign.cli import main

sys.exit(main())
