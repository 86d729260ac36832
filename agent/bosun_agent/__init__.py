"""The Bosun agent: a managed node's outbound-only link to Bosun (DESIGN.md §3)."""

__version__ = "0.1.0"
