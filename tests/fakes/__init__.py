"""Hand-written fakes of the services' ports, for fast unit tests of their logic."""
