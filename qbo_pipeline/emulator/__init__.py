"""A local QuickBooks Online, laid out as moto lays out an AWS service emulator.

One folder per service it serves, each with its backend (``models.py``, no HTTP) apart from its
HTTP layer (``responses.py``) and its routes (``urls.py``): ``accounting/`` (the Accounting API
v3), ``oauth/`` (Intuit's OAuth 2.0 / OpenID server) and ``admin/`` (the emulator's own control
plane, which drives the others' state). The pieces they share stay here: faults with QBO's codes
(``exceptions.py``) and their wire format (``guard.py``), rate limits, fault injection, webhooks
and change events, the assembled ``Emulator`` (``service.py``), ``create_app`` (``app.py``) and
``EmulatorServer`` (``server.py``).
"""
