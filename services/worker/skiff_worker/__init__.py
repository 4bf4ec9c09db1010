"""The domain worker: one codebase, deployed once per domain (flights, hotels, cars, insurance)."""
