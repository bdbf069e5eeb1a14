"""The use cases: what the jobs do (the rollover, exports, notifications and their delivery,
reminders, token cleanup), and the intake that turns what other programs raised into jobs.

Each takes the collaborators it uses as arguments. From the job engine (`engine/`) they use
only what a task needs while it runs: deferring a job in a transaction (`engine.defer`) and the
job context's names (`engine.context`). The catalogue (`planner_jobs.catalogue`) says which task
runs which use case.
"""
