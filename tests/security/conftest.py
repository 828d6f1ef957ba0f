"""Attack tests: hostile text, SQL-shaped filters and a schema-driven fuzz of the API.

The web and API fixtures (`make`, `login_client`, `api`, ...) are shared from their folders.
"""

from __future__ import annotations

from tests.api.conftest import api, as_user, token_for  # noqa: F401 - fixtures
from tests.web.conftest import login_client, make  # noqa: F401 - fixtures
