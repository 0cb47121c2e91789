"""A synthetic sales company for demos, tests and benchmarks (see ``generator``)."""
