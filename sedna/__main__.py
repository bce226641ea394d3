"""``python -m sedna`` runs the command line."""

import sys

from sedna.cli import main

sys.exit(main())
