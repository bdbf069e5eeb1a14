"""The job engine's room: everything about procrastinate.

The app and its connections (`app`, `pool`), the worker runner and its middleware (`worker`,
`observer`), the job context and the exceptions a task meets (`context`), deferring in a
transaction (`defer`), retry decisions (`retry`), queues and statuses (`queues`), stalled-job
recovery and pruning (`maintenance`), the take-over of waiting send jobs (`send_jobs`), and the
operators' views of jobs and actions on them (`views`, `actions`). Every statement that reads or
writes a `procrastinate_*` table or calls a `procrastinate_*` function is here (and in the
migrations); the engine imports no use case: the catalogue registers them, and the composition
root hands a worker what it runs besides its jobs.
"""
