"""The CLI commands of --target sagemaker: one function per command name, each taking
the resolved Target and the command's own options (see scarab.targets)."""
