"""Reading /metrics the way Prometheus does: the text format parsed into samples."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families


class Samples:
    """The samples of one scrape: `value(name, **labels)` sums the samples whose labels match."""

    def __init__(self, text: str):
        self.text = text
        self.rows = [(s.name, s.labels, s.value)
                     for family in text_string_to_metric_families(text) for s in family.samples]
        self.names = {name for name, _, _ in self.rows}

    def value(self, name: str, **labels) -> float:
        return sum(v for n, lab, v in self.rows if n == name and all(lab.get(k) == w for k, w in labels.items()))

    def matching(self, name: str, **labels) -> list[dict]:
        return [lab for n, lab, _ in self.rows if n == name and all(lab.get(k) == w for k, w in labels.items())]


def scrape_text(client, **kwargs) -> str:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    return response.get_data(as_text=True)


@pytest.fixture()
def scrape(client):
    """Scrape the app now (from loopback, as Prometheus on the same host would)."""
    return lambda: Samples(scrape_text(client))
