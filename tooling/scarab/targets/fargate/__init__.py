"""The fargate target (scarab deploy --target fargate)."""
