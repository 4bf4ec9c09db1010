"""Turning request text into grounded domain requests: prompts, the extraction pipeline,
value-token confidence, and the router that picks a request's domains.

Shared by the SLM workers, the LLM tier and `skiff extract --local`, so both tiers are
validated and grounded by exactly the same code.
"""
