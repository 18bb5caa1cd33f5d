"""``callstream export``: the completed calls and the metric windows, read from Kafka, as tables
an analyst opens in DuckDB, pandas or a spreadsheet (README, SQL for analysts).

Pure: ``latest`` (what a consumer keeps of each topic), ``columns`` (the tables' columns and
rows, from the published record types). I/O: ``source`` (Kafka), ``write`` (DuckDB), ``cli``.
"""
