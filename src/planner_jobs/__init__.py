"""planner-jobs: the background jobs of the Proactive Planner."""

__version__ = "0.1.0"
