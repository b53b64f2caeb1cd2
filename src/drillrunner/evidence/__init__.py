"""Evidence authenticity: the key that signs bundles, signing and verifying them."""
