"""Load generation and benchmarking of the order platform, over real HTTP.

``loadtest`` drives a running platform; ``bench`` starts an isolated one and
measures it against plain Celery.
"""
