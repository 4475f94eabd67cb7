"""The emulator's own control plane under ``/admin`` (not QBO's), like moto's ``/moto-api``.

It has no backend of its own: ``responses.py`` drives the other parts' state (the accounting
backend, fault injection, rate limits, webhooks) and ``urls.py`` routes it.
"""
