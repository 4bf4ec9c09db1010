"""The inventory service: the travel supplier the domain workers book against.

A deterministic, seeded catalog of flights, hotels, rental cars and insurance plans built on
the travel city catalog; offers, holds with expiry, confirmations and releases, idempotent
by key and persisted in SQLite. It stands in for GDS, hotel and car-rental APIs.
"""
