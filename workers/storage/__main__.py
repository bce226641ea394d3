"""``python -m workers.storage``: download each SRC into DST before a worker starts."""

import sys

from workers.storage.initializer import main

sys.exit(main())
