"""The pure core: parsing, decisions, prompts. No network, files or SDKs; easy to test."""
