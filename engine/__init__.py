"""The controller runtime: work queues, rate limiters, sharding, workers, the API client,
event recorder, leader election, the manager, logging and metrics.

May import: the standard library, third-party packages and ``kubetrain.informers``.
"""
