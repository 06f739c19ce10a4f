"""``python -m tessphot.cli``: the ``tessphot`` command."""

import sys

from tessphot.cli.main import main

sys.exit(main())
