"""HTTP routes, one module per resource; each route calls one service function."""
