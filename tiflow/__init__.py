"""tiflow: the action plan of a Territoire d'industrie, run as Prefect flows."""
