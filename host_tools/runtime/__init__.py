"""Running the agent on this machine: `dmagent serve` (CPython or a MicroPython runtime) and
the MicroPython device runtime it uses (fetched from Debian into .cache/ by `make setup`)."""
