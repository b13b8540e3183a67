"""The flow: the poll loop, the pipeline of one conversation, sending, review, sync."""
