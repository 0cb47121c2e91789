"""What the REST API and the web pages share: the caller, CSRF, errors, uploads."""
