import sys

from topo.cli import main

sys.exit(main())
