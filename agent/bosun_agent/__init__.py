"""The Bosun agent: a managed node's outbound-only link to Bosun (DESIGN.md §3)."""

import logging

__version__ = "0.1.0"

# A library stays quiet unless its program configures logging (`bosun-agent run` does).
logging.getLogger(__name__).addHandler(logging.NullHandler())
