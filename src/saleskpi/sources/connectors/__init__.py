"""CRM connectors: API clients that map each CRM onto the canonical entities."""
