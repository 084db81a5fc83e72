"""python -m events_audit"""

import sys

from .cli import main

sys.exit(main())
