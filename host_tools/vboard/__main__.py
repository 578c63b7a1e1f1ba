import sys

from host_tools.vboard.board import main

sys.exit(main())
