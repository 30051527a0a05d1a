"""List+watch caches: reflectors, indexed stores, listers and the shared informer factory.

May import: the standard library and third-party packages only.
"""
