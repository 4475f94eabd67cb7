"""QBO's Accounting API v3, as moto keeps a service: backend, HTTP layer and routes apart.

``models.py`` is the backend (companies, their objects and QBO's rules, over ``entities.py``,
``query.py`` and ``persistence.py``; no HTTP), ``responses.py`` its HTTP layer and ``urls.py``
its routes.
"""
