"""scarab: build, deploy and run the Scarab image-analysis API on AWS Lambda."""

__version__ = "0.1.0"
