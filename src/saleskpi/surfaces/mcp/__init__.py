"""MCP for AI assistants: the views as tools, over stdio (``saleskpi mcp``) and HTTP (``/mcp``).

``tools``: the registry (one declarative entry per view); ``server``: the MCP server
and the stdio transport; ``http``: the streamable-HTTP app with bearer-token auth.
"""
