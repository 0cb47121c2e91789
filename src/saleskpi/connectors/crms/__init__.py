"""The CRM connectors; importing this package registers each of them."""
