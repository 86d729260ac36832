"""`python -m bosun_agent` is `bosun-agent`."""

from __future__ import annotations

import sys

from bosun_agent.cli import main

sys.exit(main())
