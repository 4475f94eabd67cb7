"""Intuit's OAuth 2.0 / OpenID Connect server, as moto keeps a service: backend, HTTP layer, routes.

``models.py`` is the backend (settings, grants and tokens, Intuit's rules; no HTTP),
``responses.py`` its HTTP layer, ``urls.py`` its routes over Intuit's paths (``paths.py``).
"""
