"""lens.server: the same core as the Lambda handler behind an ASGI server (for SageMaker
Serverless Inference and ECS Fargate)."""
