"""`python -m mmzarr`."""

import sys

from mmzarr._cli import main

sys.exit(main())
