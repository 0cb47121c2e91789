"""amoCRM / Kommo: API v4 sync and webhooks (docs/connectors/amocrm.md)."""

from saleskpi.sources.connectors.crms.amocrm.connector import AmoCrmConnector

__all__ = ["AmoCrmConnector"]
