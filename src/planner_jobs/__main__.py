from planner_jobs.cli import main

main()
