"""`scarab serve`: the deployed stack, locally, with API Gateway's rules enforced."""
