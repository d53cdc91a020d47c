"""lens: the Scarab function. Handler at lens.handler.lambda_handler (task root lambda/)."""

__version__ = "0.1.0"
