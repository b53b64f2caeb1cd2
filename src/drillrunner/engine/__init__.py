"""The engine: runs scenarios, keeps the journal and history, and checks them.

It never imports a service client: service drivers register plain functions by name.
"""
