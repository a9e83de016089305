"""The service core, with no transport in it: settings, synthesis, voices, jobs, storage, metrics.

The doors (``f5serve.http``, ``f5serve.runpod``, ``f5serve.cli``) call into it; it never imports
them.
"""
