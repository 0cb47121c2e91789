"""The CRM connectors; importing this package registers each of them."""

from saleskpi.sources.connectors.crms import amocrm, bitrix24, hubspot, pipedrive

__all__ = ["amocrm", "bitrix24", "hubspot", "pipedrive"]
