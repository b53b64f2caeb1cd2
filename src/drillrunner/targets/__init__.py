"""Where the stack runs: the capability protocols and their implementations."""
