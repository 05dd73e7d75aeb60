"""`python -m bot` is `intake-bot`."""

import sys

from bot.cli import main

sys.exit(main())
