"""intercom-responder: answer Intercom conversations with an LLM, ask a human when unsure."""

__version__ = "0.1.0"
