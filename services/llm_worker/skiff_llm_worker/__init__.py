"""The LLM worker: the escalation tier for any domain (`task.llm.resolve`)."""
