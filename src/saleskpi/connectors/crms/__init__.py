"""The CRM connectors; importing this package registers each of them."""

from saleskpi.connectors.crms import amocrm  # noqa: F401
