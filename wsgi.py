"""The one place the application object is created (gunicorn wsgi:app, FLASK_APP=wsgi)."""

from portal import create_app

app = create_app()
