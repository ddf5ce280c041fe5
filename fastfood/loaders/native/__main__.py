"""``python -m fastfood.loaders.native``: build the DALI operator library ahead of first use."""

import sys

from fastfood.loaders.native import main

sys.exit(main())
