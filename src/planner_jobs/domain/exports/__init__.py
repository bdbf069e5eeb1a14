"""Data exports: who may request one, and the three file formats (pure streaming writers).

The writers take plain values (`ExportData`: the user's rows as iterables) and write bytes to a
binary file object as they go: memory stays flat however many rows there are.
"""
