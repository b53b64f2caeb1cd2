"""The local target: the stack as real servers supervised by drill on 127.0.0.1."""
