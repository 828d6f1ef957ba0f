"""RQ job functions: thin, context-free, take ids, call a service inside an app context."""
