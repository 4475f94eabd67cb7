"""The steps of a sync run, one function per asset: the I/O around the pure core.

`push` reads the source, holds back bad rows, fetches QBO's side, plans and writes to QBO;
`pull` brings QBO's changes into the source. Dagster's assets (`defs/`) call these and report
what they return; the decisions they carry out are the sync core's (`sync/`).
"""
