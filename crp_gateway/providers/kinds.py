"""The kinds of provider a tenant can register, and their defaults."""

from __future__ import annotations

from enum import StrEnum


class ProviderKind(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    CUSTOM = "custom"


#: Where a provider lives when the tenant does not say (each SDK's own default:
#: OpenAI's includes ``/v1``, Anthropic's does not).
DEFAULT_BASE_URLS = {
    ProviderKind.OPENAI: "https://api.openai.com/v1",
    ProviderKind.ANTHROPIC: "https://api.anthropic.com",
}

#: Names a custom provider may not take: they belong to the built-in kinds.
RESERVED_NAMES = frozenset(kind.value for kind in ProviderKind)
