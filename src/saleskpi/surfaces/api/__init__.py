"""The HTTP surface: FastAPI app factory, webhooks now; the REST API and web pages next."""
