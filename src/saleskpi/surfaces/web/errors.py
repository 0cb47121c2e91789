"""What a page handler raises instead of returning: a redirect to sign in, or an error page."""

from __future__ import annotations


class LoginRequired(Exception):
    """Nobody is signed in: send the browser to /login and back afterwards."""


class PageError(Exception):
    """An error page with ``status`` and a sentence for the reader (already translated)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
