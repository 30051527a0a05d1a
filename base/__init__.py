"""What every room shares and no room owns: time, rate, backoff and object helpers.

Standard library only, so any room (the API server included) may import it without pulling in a
runtime. One ``Clock`` is injected everywhere time matters, so a test can run the whole operator
in fake time.
"""
