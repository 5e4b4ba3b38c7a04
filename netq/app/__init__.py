"""The applications: the run command, presets, the report, the stress job and the load studies."""
