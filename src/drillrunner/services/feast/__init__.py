"""Feast service driver: the feature server's health, online feature correctness against
the offline truth, online store loss and re-materialisation, registry backup and restore.

Registered names live in the submodules (the catalog scans them). The drill process never
imports feast: it talks to `feast serve` over HTTP and runs the `feast` CLI as a
subprocess where a CLI step is the procedure under test.
"""

from drillrunner.services.feast.roles import Role, member_roles

__all__ = ["Role", "member_roles"]
