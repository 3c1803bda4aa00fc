"""Pure translation between OpenAI Chat Completions and Anthropic Messages.

No I/O, no clock, no globals that change: every function maps JSON objects
(``dict[str, Any]``) to JSON objects; the two stream translators keep per-
request state in their instance. Failures raise :class:`TranslationError`
(a ``ValueError`` with ``.field``, the offending input path: answer 400) or,
for an ``error`` event inside a provider stream, :class:`ProviderStreamError`
(with the provider's ``.error_type``: map to 429/5xx as appropriate).

Direction A - OpenAI client, Anthropic provider
(``openai_request_to_anthropic``, ``anthropic_response_to_openai``,
``AnthropicToOpenAIStream``)

=====================================  ==========================================
OpenAI request field                   Anthropic request
=====================================  ==========================================
model                                  replaced by the ``model`` argument
messages[role=system|developer]        hoisted, in order, to top-level ``system``
                                       (list of text blocks), wherever they occur
messages[role=user] text / parts       user turn; text parts -> text blocks
  image_url data:<type>;base64,...     image, source base64 (jpeg/png/gif/webp,
                                       image/jpg normalised); else 400
  image_url http(s)://                 image, source url; other schemes 400
  image_url.detail                     dropped (no equivalent)
  input_audio / file parts             400 (no equivalent)
messages[role=assistant] content       text blocks (``refusal`` parts -> text)
  tool_calls                           tool_use blocks; ``arguments`` parsed, must
                                       be a JSON object ("" -> {}); invalid 400
  function_call (deprecated)           400
messages[role=tool]                    tool_result block in a user turn
messages[role=function] (deprecated)   400
message ``name``                       dropped (no equivalent)
empty text                             dropped; empty messages dropped
consecutive same-role turns            merged into one turn (Anthropic alternates);
                                       tool_result blocks moved first in a turn
tools[type=function]                   {name, description, input_schema}; missing
                                       parameters -> empty object schema;
                                       ``strict`` dropped; custom tools 400
tool_choice auto/none/required         {type: auto}/{type: none}/{type: any}
tool_choice {function: {name}}         {type: tool, name}; allowed_tools etc. 400
tool_choice without tools              auto/none dropped; required/named 400
parallel_tool_calls=false              tool_choice.disable_parallel_tool_use=true
max_completion_tokens / max_tokens     max_tokens (first one set, in that order);
                                       absent -> ``default_max_tokens``
stop (string or list)                  stop_sequences
temperature                            passed; outside [0, 1] -> 400 (Anthropic's
                                       range; rescaling would change sampling)
top_p                                  passed
stream                                 stream (stream_options read by the caller,
                                       which passes ``include_usage`` to the
                                       stream translator)
user (else safety_identifier)          metadata.user_id
n > 1                                  400 (the client expects n choices)
logprobs=true / top_logprobs           400 (the client expects logprobs back)
logit_bias (non-empty)                 400 (a hard token constraint)
response_format json_object/schema     400 (the client relies on JSON output);
                                       {type: text} accepted
functions / function_call (request)    400 (deprecated; use tools/tool_choice)
audio, modalities other than text      400
web_search_options                     400
frequency/presence_penalty, seed,      dropped: hints without a contract on the
reasoning_effort, verbosity,           response shape
prediction, service_tier, store,
metadata, prompt_cache_*, other keys
=====================================  ==========================================

=====================================  ==========================================
Anthropic response                     OpenAI ``chat.completion``
=====================================  ==========================================
id                                     ``"chatcmpl-" + id`` (chunks: same id)
content text blocks                    message.content, joined with no separator;
                                       null when there are only tool calls
content tool_use blocks                message.tool_calls (id kept verbatim so
                                       tool results round-trip; arguments as
                                       compact JSON)
thinking / redacted_thinking / server  dropped (no Chat Completions equivalent)
tool blocks
stop_reason end_turn, stop_sequence,   finish_reason stop
pause_turn, null/unknown
stop_reason max_tokens,                finish_reason length
model_context_window_exceeded
stop_reason tool_use                   finish_reason tool_calls
stop_reason refusal                    finish_reason content_filter
usage input + cache_creation +         usage.prompt_tokens (cache reads also in
cache_read input tokens                prompt_tokens_details.cached_tokens)
usage output_tokens                    usage.completion_tokens; total = sum
model / created                        the ``model`` / ``created`` arguments
=====================================  ==========================================

Direction B - Anthropic client, OpenAI-compatible provider
(``anthropic_request_to_openai``, ``openai_response_to_anthropic``,
``OpenAIToAnthropicStream``)

=====================================  ==========================================
Anthropic request field                OpenAI request
=====================================  ==========================================
model                                  replaced by the ``model`` argument
system (string or text blocks)         first message, role system (blocks joined
                                       with a blank line)
user text blocks                       user message (one text -> string content)
user image base64 / url                image_url part (data: URL / the url);
                                       file sources 400
user tool_result                       role tool message, emitted before the rest
                                       of the turn; text content joined with
                                       newlines; images inside 400; ``is_error``
                                       dropped (no equivalent)
assistant text / tool_use              content (joined) / tool_calls (id kept,
                                       input as compact JSON arguments)
thinking / redacted_thinking           dropped (an assistant turn left empty is
                                       dropped too)
document, search_result, server tool   400
blocks, other block types
cache_control (anywhere)               dropped (caching hint)
tools (custom)                         type function {name, description,
                                       parameters=input_schema}; ``strict`` dropped
tools (server tools, e.g. web_search)  400
tool_choice auto/any/tool/none         auto/required/{function: {name}}/none;
                                       any/tool without tools 400
disable_parallel_tool_use=true         parallel_tool_calls=false
max_tokens (required)                  ``max_completion_tokens`` (default) or
                                       ``max_tokens``: see ``max_tokens_field``
stop_sequences                         stop
temperature, top_p                     passed
top_k                                  dropped (sampling hint)
stream                                 stream + stream_options.include_usage=true
metadata.user_id                       user
thinking, service_tier, speed,         dropped (hints; the response just has no
output_config.effort, other keys       thinking blocks)
container, mcp_servers,                400
output_config.format
=====================================  ==========================================

=====================================  ==========================================
OpenAI response                        Anthropic ``message``
=====================================  ==========================================
id                                     ``"msg_" + id``
choices[0] (others ignored)            content blocks; no choices -> error
message.content, message.refusal       text blocks
message.tool_calls                     tool_use blocks (arguments parsed; invalid
                                       JSON raises TranslationError)
finish_reason stop / length            stop_reason end_turn / max_tokens
finish_reason tool_calls,              stop_reason tool_use (also when tool calls
function_call                          are present and finish_reason is stop)
finish_reason content_filter           stop_reason refusal
stop_sequence                          always null (OpenAI does not say which)
usage prompt_tokens - cached           usage.input_tokens (cached ->
                                       cache_read_input_tokens)
usage completion_tokens                usage.output_tokens
=====================================  ==========================================

Framing: Anthropic events are framed by :func:`encode_anthropic_event`
(``event: <type>\\ndata: <json>\\n\\n``); OpenAI chunks are framed by the caller
as ``data: <json>\\n\\n`` and terminated by ``data: [DONE]\\n\\n``. Both stream
translators expose ``usage`` (a :class:`TokenUsage` in OpenAI semantics, where
prompt tokens include cache reads/writes) for billing.
"""

from ._common import JSONObject, ProviderStreamError, TokenUsage, TranslationError
from .chat_completions import anthropic_response_to_openai, openai_request_to_anthropic
from .chat_completions_stream import AnthropicToOpenAIStream
from .messages import anthropic_request_to_openai, openai_response_to_anthropic
from .messages_stream import OpenAIToAnthropicStream, encode_anthropic_event

__all__ = [
    "AnthropicToOpenAIStream",
    "JSONObject",
    "OpenAIToAnthropicStream",
    "ProviderStreamError",
    "TokenUsage",
    "TranslationError",
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "encode_anthropic_event",
    "openai_request_to_anthropic",
    "openai_response_to_anthropic",
]
