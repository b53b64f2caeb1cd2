"""The kind target: the stack on a Kubernetes cluster (kind locally), driven through the
`kubernetes` client with one kubeconfig context.

Nothing here imports `kubernetes` at module level: `drill --help` must stay fast.
Safety first: `safety.check_context` refuses any context that is not on the allow-list
before a single API call is made.
"""
