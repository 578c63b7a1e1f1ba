import sys

from dmagent.host_tools.cli.vboard import main

sys.exit(main())
