"""Flask extension objects, created unbound; create_app() binds them. Imports nothing of portal."""

import logging

from flask.logging import wsgi_errors_stream
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

# Stable constraint names so Alembic migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def _root_logs_nothing(record: logging.LogRecord) -> bool:
    """Pass records only while no handler sits on the root logger (else they would print twice)."""
    return not logging.getLogger().handlers


# Flask-Limiter reports a rate-limit storage outage ("falling back to in-memory storage", once per
# outage) and the errors it swallows on its own logger, which holds only a NullHandler: unless
# something configures the root logger (gunicorn does not), those records would be dropped. Write
# them where app.logger writes (the WSGI error stream, else stderr) while nothing else does.
_limiter_log_handler = logging.StreamHandler(wsgi_errors_stream)
_limiter_log_handler.setLevel(logging.WARNING)
_limiter_log_handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s in %(name)s: %(message)s"))
_limiter_log_handler.addFilter(_root_logs_nothing)
limiter.logger.addHandler(_limiter_log_handler)
