"""A demo service, `echo`: one HTTP server process. It exists to show (in test_registry.py)
that a service is its folder plus one registry line: nothing else in drill names it."""


def member_roles(target: object) -> dict[str, str]:
    return {"echo-0": "server"}
