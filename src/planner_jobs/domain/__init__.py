"""The rules of the planner, as pure functions of their inputs (the time included).

Standard library only: no clock reads, no I/O, no ORM. A test imports nothing but the function.
"""
