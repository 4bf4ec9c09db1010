"""The city catalog: its data file, its invariants and its lookups."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import airportsdata
import pytest

from skiff_travel.catalog import Catalog, City, default_catalog
from skiff_travel.text import normalize_key

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "libs" / "travel" / "skiff_travel" / "data" / "cities.json"
FIXTURE = ROOT / "tests" / "fixtures" / "sgd_slots.jsonl"
# SGD's hotel services spell the capital "Washington D.C."; its flight and car services,
# and the catalog, say "Washington".
SGD_EQUIVALENT = {"Washington D.C.": "Washington"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


def test_data_file_is_small_and_generated() -> None:
    assert DATA.stat().st_size < 300_000
    assert "build_catalog.py" in json.loads(DATA.read_text("utf-8"))["about"]


def test_data_file_matches_a_fresh_build() -> None:
    script = ROOT / "libs" / "travel" / "build_catalog.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_default_catalog_is_loaded_once(catalog: Catalog) -> None:
    assert default_catalog() is catalog
    assert len(catalog) >= 250


def test_every_city_is_consistent_with_airportsdata(catalog: Catalog) -> None:
    airports = airportsdata.load("IATA")
    for city in catalog:
        assert city.iata in airports, city.label
        assert all(code in airports for code in city.airports), city.label
        assert not city.airports or city.airports[0] == city.iata, city.label
        assert catalog.country_name(city.country), city.label
        assert -90 <= city.lat <= 90, city.label
        assert -180 <= city.lon <= 180, city.label
        ZoneInfo(city.tz)


def test_cities_are_unique_and_airports_have_one_owner(catalog: Catalog) -> None:
    idents = [(c.name, c.region, c.country) for c in catalog]
    assert len(idents) == len(set(idents))
    owned = [code for c in catalog for code in c.airports]
    assert len(owned) == len(set(owned))


def test_a_shared_name_has_at_most_one_primary(catalog: Catalog) -> None:
    by_key: dict[str, set[City]] = defaultdict(set)
    for city in catalog:
        for text in (city.name, *city.aliases):
            by_key[normalize_key(text)].add(city)
    for key, cities in by_key.items():
        assert sum(c.primary for c in cities) <= 1, key


def test_every_sgd_city_is_in_the_catalog(catalog: Catalog) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text("utf-8").splitlines()]
    canonical = {r["canonical"] for r in rows if r["kind"] == "city"}
    assert len(canonical) >= 25
    for name in canonical:
        assert catalog.by_name(SGD_EQUIVALENT.get(name, name)), name


@pytest.mark.parametrize(
    ("name", "region", "country", "primary"),
    [
        ("Portland", "OR", "US", True),
        ("Portland", "ME", "US", False),
        ("Springfield", "IL", "US", False),
        ("Springfield", "MO", "US", False),
        ("Springfield", "MA", "US", False),
        ("Columbia", "SC", "US", False),
        ("Columbia", "MO", "US", False),
        ("Paris", None, "FR", True),
        ("Paris", "TX", "US", False),
        ("London", None, "GB", True),
        ("London", "ON", "CA", False),
        ("Birmingham", None, "GB", True),
        ("Birmingham", "AL", "US", False),
        ("Vancouver", "BC", "CA", True),
        ("Vancouver", "WA", "US", False),
    ],
)
def test_same_name_cities(
    catalog: Catalog, name: str, region: str | None, country: str, primary: bool
) -> None:
    matches = [c for c in catalog.by_name(name) if (c.region, c.country) == (region, country)]
    assert len(matches) == 1
    assert matches[0].primary is primary


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("JFK", "New York"),
        ("lga", "New York"),
        ("EWR", "New York"),
        ("LHR", "London"),
        ("SJC", "San Jose"),  # not Fremont or Sunnyvale, which it merely serves
        ("SNA", "Anaheim"),  # John Wayne serves Anaheim, which has no airport of its own
        ("YXU", "London"),
    ],
)
def test_by_iata(catalog: Catalog, code: str, name: str) -> None:
    city = catalog.by_iata(code)
    assert city is not None
    assert city.name == name


def test_by_iata_unknown_code(catalog: Catalog) -> None:
    assert catalog.by_iata("ZZZ") is None
    assert catalog.by_iata("") is None


def test_iata_rule_primary_airport_or_serving_airport(catalog: Catalog) -> None:
    (new_york,) = catalog.by_name("New York")
    assert new_york.iata == "JFK"
    assert new_york.airports == ("JFK", "LGA", "EWR")
    (fremont,) = catalog.by_name("Fremont")
    assert fremont.iata == "SJC"
    assert fremont.airports == ()
    (washington,) = catalog.by_name("Washington")
    assert (washington.iata, washington.region) == ("IAD", "DC")


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("Philly", "Philadelphia"),
        ("NYC", "New York"),
        ("Big Apple", "New York"),
        ("San Fran", "San Francisco"),
        ("SF", "San Francisco"),
        ("LA", "Los Angeles"),
        ("Vegas", "Las Vegas"),
        ("DC", "Washington"),
        ("Washington D.C.", "Washington"),
        ("Chi-town", "Chicago"),
        ("ATL", "Atlanta"),
        ("CDMX", "Mexico City"),
        ("Ciudad de México", "Mexico City"),
        ("KL", "Kuala Lumpur"),
        ("New Delhi", "Delhi"),
        ("Saint Louis", "St. Louis"),
        ("Bombay", "Mumbai"),
    ],
)
def test_by_name_aliases(catalog: Catalog, alias: str, name: str) -> None:
    assert [c.name for c in catalog.by_name(alias)] == [name]


def test_airport_names(catalog: Catalog) -> None:
    assert catalog.by_airport_name("Heathrow") == ("LHR", catalog.by_iata("LHR"))
    assert catalog.by_airport_name("John F Kennedy International Airport") is not None
    assert catalog.by_airport_name("Gotham International") is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("US", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("the States", "US"),
        ("United States", "US"),
        ("UK", "GB"),
        ("England", "GB"),
        ("Germany", "DE"),
        ("de", "DE"),
        ("Côte d'Ivoire", "CI"),
        ("Holland", "NL"),
    ],
)
def test_country_codes(catalog: Catalog, text: str, code: str) -> None:
    assert catalog.country_code(text) == code


def test_country_names(catalog: Catalog) -> None:
    assert catalog.country_name("gb") == "United Kingdom"
    assert catalog.country_name("US") == "United States"
    assert catalog.country_code("Atlantis") is None
    assert catalog.country_name("XX") is None


def test_regions(catalog: Catalog) -> None:
    assert ("US", "IL") in catalog.regions_for("Illinois")
    assert ("US", "CA") in catalog.regions_for("ca")
    assert ("CA", "BC") in catalog.regions_for("B.C.")
    assert catalog.region_name("AU", "NSW") == "New South Wales"


def test_a_catalog_can_be_built_from_plain_data() -> None:
    springfield = {
        "name": "Springfield",
        "country": "US",
        "iata": "SPI",
        "airports": ["SPI"],
        "lat": 39.8,
        "lon": -89.7,
        "tz": "America/Chicago",
        "region": "IL",
        "primary": False,
    }
    small = Catalog.from_dict({"countries": {"US": "United States"}, "cities": [springfield]})
    assert len(small) == 1
    assert small.by_iata("spi") == small.cities[0]
    assert small.cities[0].label == "Springfield, IL, US"
