"""The job domain: common job machinery and one module per Kubeflow v1 kind.

May import: ``kubetrain.engine`` and ``kubetrain.informers``.
"""
