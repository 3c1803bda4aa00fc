"""The data path: OpenAI- and Anthropic-compatible calls routed to tenants' providers.

``routing`` picks the provider, ``validation`` checks the request the way the
provider's own API would, ``chat`` and ``messages`` run the two ingresses (each
provider kind natively or through ``providers.translate``), ``usage`` records the
tokens of every call.
"""
