"""The CLI commands of --target fargate: one function per command name, each taking
the resolved Target and the command's own options (see scarab.targets)."""
