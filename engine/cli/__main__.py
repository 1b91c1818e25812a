"""``python -m engine.cli``: the ``dif`` command without the console script."""

import sys

from engine.cli.main import main

sys.exit(main())
