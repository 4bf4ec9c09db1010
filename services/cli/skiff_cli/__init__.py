"""The `skiff` command line: submit and follow trips, batch extraction, and the local stack."""
