"""The governance registry: model cards, schemas, aliases with history, and live metrics."""
