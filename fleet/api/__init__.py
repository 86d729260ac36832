"""The fleet's REST API (DRF) under /api/v1/: the same services and filters as the pages."""
