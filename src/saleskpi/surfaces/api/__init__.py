"""The REST API (v1): one JSON route per view, the same JSON as the CLI's ``--format json``."""
