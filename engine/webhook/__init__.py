"""Admission webhooks: the HTTPS server (``server.py``), the review types handlers use
(``admission.py``), and where the serving certificate comes from: self-managed in a Secret
(``rotator.py``) or files written by cert-manager (``certwatcher.py``); ``certs.py`` makes them."""
