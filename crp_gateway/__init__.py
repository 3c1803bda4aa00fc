"""CRP Gateway: a multi-tenant, OpenAI-compatible LLM gateway with CRP governance."""

__version__ = "0.1.0"
