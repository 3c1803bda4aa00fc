"""Business logic behind the HTTP routes: one module per resource.

Services mint ids and timestamps, call repositories, and raise
:mod:`crp_gateway.errors`; routes only unpack requests and call one function.
"""
