"""HubSpot: CRM v3 objects onto the canonical entities (docs/connectors/hubspot.md)."""

from saleskpi.sources.connectors.crms.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]
