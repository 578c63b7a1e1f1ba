import sys

from host_tools.cli.vboard import main

sys.exit(main())
