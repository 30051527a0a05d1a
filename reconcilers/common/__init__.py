"""Job machinery shared by every kind: naming, conditions, replica statuses, pods, services,
run policy and the job-status state machine. Pure functions over plain dicts; no I/O.
"""
