"""Export files: the formats (their registry in `formats`) and their pure streaming writers.

The writers take plain values (`ExportData`: the user's rows as iterables) and write bytes to a
binary file object as they go: memory stays flat however many rows there are. Who may request
an export, and how often, is the database's rule (`planner_request_export()`), which every way
in asks.
"""
