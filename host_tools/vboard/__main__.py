import sys

from dmagent.host_tools.vboard.board import main

sys.exit(main())
