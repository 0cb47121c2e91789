"""saleskpi: sales team KPIs from CRM data, the same number on every surface."""

__version__ = "0.1.0"
