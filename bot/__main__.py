"""`python -m bot` is `intake-bot`."""

import sys

from bot.cli.main import main

sys.exit(main())
