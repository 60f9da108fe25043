"""The query language compiled to SQLite: a definition's plan (one query over the events of the
profiles it is given, and the top of its tree in Python) and the scans plans make together."""
