import pytest

@pytest.fixture(autouse=True)
def _hash_cost(app):
    old = app.config["PASSWORD_HASH_MEMORY_KIB"]
    app.config["PASSWORD_HASH_MEMORY_KIB"] = 64
    yield
    app.config["PASSWORD_HASH_MEMORY_KIB"] = old
