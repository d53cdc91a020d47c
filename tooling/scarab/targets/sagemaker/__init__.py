"""The sagemaker target (scarab deploy --target sagemaker)."""
