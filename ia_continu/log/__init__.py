"""The prediction log: every answer written off the request path, nothing lost."""
