"""Helpers for the export tests: reading files the way a user's spreadsheet or PDF viewer would."""

from __future__ import annotations

import csv
import gzip
import io
import re

from pypdf import PdfReader

from tests.web.helpers import text_of  # noqa: F401 - re-exported for the tests

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_id_from(response) -> int:
    """The export a POST created, from its redirect to /exports/<id>."""
    assert response.status_code == 303, response.status_code
    return int(re.fullmatch(r".*/exports/(\d+)", response.headers["Location"]).group(1))


def csv_rows(body: bytes, gzipped: bool = False) -> list[list[str]]:
    """Rows of a downloaded CSV (header first), decoded as UTF-8."""
    if gzipped:
        body = gzip.decompress(body)
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def spreadsheet_safe(value: str) -> str:
    """What the export must write for a cell whose value is `value`."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def pdf_pages(body: bytes) -> list[str]:
    """The text of each page of a PDF."""
    assert body[:5] == b"%PDF-", body[:20]
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(body)).pages]
