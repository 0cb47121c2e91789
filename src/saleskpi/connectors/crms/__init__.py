"""The CRM connectors; importing this package registers each of them."""

from saleskpi.connectors.crms import amocrm, hubspot, pipedrive

__all__ = ["amocrm", "hubspot", "pipedrive"]
