"""Views: one data function per view, returning typed results every surface renders."""
