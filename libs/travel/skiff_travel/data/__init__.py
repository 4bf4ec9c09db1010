"""Data files shipped with skiff_travel: the generated city catalog, `cities.json`."""
