"""qbo_pipeline: keep a business application's records in sync with QuickBooks Online."""
