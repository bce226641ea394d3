"""``python -m lc``: run the Local Controller."""

import sys

from lc.main import main

sys.exit(main())
