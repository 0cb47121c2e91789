"""A synthetic sales company for demos, tests and benchmarks."""

from saleskpi.demo.generator import generate_company

__all__ = ["generate_company"]
