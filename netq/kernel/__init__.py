"""The kernel model: what mirrors a kernel source file (net/core, net/sched, drivers, include/)."""
