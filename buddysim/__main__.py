import sys

from buddysim.cli import main

sys.exit(main())
