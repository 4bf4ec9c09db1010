"""What every Skiff process needs at its edge: settings, logging, broker, JetStream layout."""
