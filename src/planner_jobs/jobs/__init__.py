"""The job engine: the procrastinate app, its tasks, their schedule and the workers."""
