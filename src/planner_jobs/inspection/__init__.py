"""What operators see: the job engine's queues, jobs, workers and schedule (its own views,
`engine.views`), beside the state of the rollover, exports and pushes, read from the database.

One room for every view: the CLI (`status`, `jobs`), the dashboard (`/admin`) and the metrics
read the same functions (`views`), and each question is answered by one definition, the one
its owner uses (the users with rollover work are the sweep's, the notifications waiting the
drain's, the rollover lag the metric's), so the numbers agree wherever they are shown. Actions
on jobs are the engine's (`engine.actions`).
"""
