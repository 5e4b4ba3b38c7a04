"""Drivers: what ndo_start_xmit does for each kind of device."""
