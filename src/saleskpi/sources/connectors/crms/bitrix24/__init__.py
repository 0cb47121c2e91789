"""Bitrix24: REST through an inbound webhook, outgoing webhooks (docs/connectors/bitrix24.md)."""

from saleskpi.sources.connectors.crms.bitrix24.connector import Bitrix24Connector

__all__ = ["Bitrix24Connector"]
