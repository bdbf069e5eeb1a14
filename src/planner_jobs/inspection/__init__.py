"""What operators see: the job engine's queues, jobs, workers and schedule, and the state of the
rollover, exports and pushes, read from the database.

One room for every view: the CLI (`status`, `jobs`), the dashboard (`/admin`) and the metrics
read the same functions (`views`), and act through the same two (`actions`: retry, cancel).
Every query is an index lookup (migration 0007 adds the indexes it needs on procrastinate's
tables), so a million finished jobs cost nothing to look past.
"""
