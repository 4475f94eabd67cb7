"""The webhook receiver: verify QBO's signature, store the events durably, answer at once.

What the events then start (the sync runs) is the webhook sensor's business (`defs/events.py`),
decided in `sync/events.py`.
"""
